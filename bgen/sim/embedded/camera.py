"""Under construction: names exported so the package imports while this module is written."""


class CameraOrientation:
    pass


class CameraProjection:
    pass


class CameraView:
    pass
