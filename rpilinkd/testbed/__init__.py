"""A testbed: rpilink-sim and rpilinkd daemons as child processes, for tests, soak and bench.

Everything it starts runs on loopback ports and in a work directory's
sockets, and is stopped by PID whatever happens: a failed start-up stops what
had started, and children die with the process that started them.
"""

from rpilinkd.testbed.processes import Child, free_port, python_module
from rpilinkd.testbed.system import NODES, Daemon, System, request

__all__ = ["NODES", "Child", "Daemon", "System", "free_port", "python_module", "request"]
