"""Under construction: names exported so the package imports while this module is written."""


class AsyncRendererClient:
    pass


class RendererClient:
    pass
