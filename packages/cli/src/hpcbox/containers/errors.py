"""The container store's errors: one line naming the problem and the fix, and an exit code."""

from __future__ import annotations

from hpcbox.errors import EXIT_FAILURE, EXIT_INTEGRITY, EXIT_NOT_FOUND, EXIT_USAGE, HpcboxError


class ContainerError(HpcboxError):
    """A container operation failed; str() is one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str = "", code: int = EXIT_FAILURE):
        super().__init__(problem, fix, code)


class UnknownContainerError(ContainerError):
    def __init__(self, text: str):
        super().__init__(f"no container {text!r}", "run 'hpcbox ps' to see the containers", EXIT_NOT_FOUND)


class AmbiguousContainerError(ContainerError):
    def __init__(self, text: str, count: int):
        super().__init__(f"container id prefix {text!r} matches {count} containers",
                         "give more digits or the name", EXIT_USAGE)


class ContainerExistsError(ContainerError):
    def __init__(self, name: str):
        super().__init__(f"the name {name!r} is already used by a container",
                         "choose another name, or free it with 'hpcbox rmname NAME'")


class ProtectedError(ContainerError):
    pass


class DamagedContainerError(ContainerError):
    def __init__(self, text: str, reason: str):
        super().__init__(f"container {text} is damaged ({reason})",
                         f"remove it with 'hpcbox rm {text}' (or 'hpcbox prune')", EXIT_INTEGRITY)


class ContainerInUseError(ContainerError):
    pass
