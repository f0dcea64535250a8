"""Host identity: the fingerprint a latency table records of its machine and runtime and the check against this
host (`fingerprint`), and the devices of a hardware profile's pool (`devices`). The machine itself is read in one
place, `ofa_deploy.hostinfo`. Import the submodules directly; this package imports nothing on its own.
"""
