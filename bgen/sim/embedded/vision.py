"""Under construction: names exported so the package imports while this module is written."""


class AgentVisionRenderer:
    pass


class FilterWorld:
    pass


class NoiseParams:
    pass
