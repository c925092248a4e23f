-- A refused request to come back (/join by someone who had left) made the row 'rejected' until 306b04a,
-- and a rejected row is graded nowhere: the months before the member left vanished from /grade and the
-- forms. Such rows are exactly the rejected ones with a left_on (a voided or refused first request never
-- had one: it was never approved). They go back to 'left', as a refused return leaves them now.
UPDATE members SET status = 'left' WHERE status = 'rejected' AND left_on IS NOT NULL;
