"""Under construction: names exported so the package imports while this module is written."""


class Cell:
    pass


class DenseSnapshot:
    pass


class VoxelGrid:
    pass


class VoxelSet:
    pass
