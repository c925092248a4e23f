"""The tests' throwaway PostgreSQL cluster: the machinery lives in bench/pgcluster.py (an installed
package, so ``python -m bot bench --backend postgres`` can start one without tests/)."""

from bench.pgcluster import PostgresServer, PostgresUnavailable, postgres_server

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres_server"]
