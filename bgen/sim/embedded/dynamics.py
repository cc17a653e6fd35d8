"""Under construction: names exported so the package imports while this module is written."""


class EnvState:
    pass


class QuadDynamics:
    pass


class QuadParams:
    pass
