"""Scale-out: the long jobs on Ray (the ``ray`` extra) and on pools of real devices.

- `ray_executor`: `RayExecutor`, Ray actors that build the job once (weights through the object store).
- `accuracy`: the accuracy-dataset job (BN recalibration + top-1), for any executor.
- `devices`: the ``devices:`` entries of a hardware profile, and anchor-based flagging of odd devices.
- `pool`: `DevicePool`, one actor per device holding the custom resource ``device:<name>``.
- `runners`: how a device is reached: ``local``, ``ssh``, ``adb``.

Nothing here imports Ray at module level; `require_ray()` says which extra to install.
"""
