"""Work off the request path: the queue and its task bodies (`worker`), leases, job callbacks, training runs
in a child process and their supervision, uploaded datasets."""
