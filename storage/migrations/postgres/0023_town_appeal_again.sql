-- PostgreSQL after 0023's rebuild: the copied rows kept their ids, so the new identity sequence starts
-- after the largest (a fresh sequence would hand out id 1 again).
SELECT setval(pg_get_serial_sequence('town_appeals', 'id'), COALESCE((SELECT MAX(id) FROM town_appeals), 1),
              (SELECT MAX(id) FROM town_appeals) IS NOT NULL);
