"""bgen's specification, as stdlib unittest modules: one file per component."""
