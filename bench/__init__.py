"""SafeShare's benchmarks against bare Temporal, measured on the same machine in the same run
(``make bench``). Never part of ``make test``."""
