"""A script that raises before it submits anything: no JobID line, exit code != 0.

It waits a moment first: a script that dies within milliseconds can race
PyFlink's launcher, which then reports "Failed to start Python process" and
loses the traceback, which is not the case this job stands for."""
import time

time.sleep(2)
raise RuntimeError("fjs test: configuration table 'dim_users' does not exist")
