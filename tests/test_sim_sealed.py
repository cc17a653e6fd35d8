"""Backend classes are immutable types, as PyO3 classes are: a policy cannot patch the simulator."""

import unittest

from bgen.sim import load_backend

vxs = load_backend()


def public_classes():
    return [getattr(vxs, name) for name in dir(vxs)
            if not name.startswith("_") and isinstance(getattr(vxs, name), type)
            and not issubclass(getattr(vxs, name), BaseException)]


class TestImmutableTypes(unittest.TestCase):
    def test_every_public_class_refuses_attribute_assignment(self):
        classes = public_classes()
        self.assertGreater(len(classes), 20)
        for cls in classes:
            with self.subTest(cls=cls.__name__):
                with self.assertRaises(TypeError):
                    cls.injected = 1
                self.assertFalse(hasattr(cls, "injected"))

    def test_replacing_a_method_on_a_class_is_a_type_error_naming_it(self):
        with self.assertRaises(TypeError) as caught:
            vxs.Agent.get_pos = lambda self: [0.0, 0.0, 0.0]
        self.assertIn("'get_pos'", str(caught.exception))
        self.assertIn("immutable type", str(caught.exception))

    def test_deleting_a_method_from_a_class_is_a_type_error(self):
        with self.assertRaises(TypeError):
            del vxs.VoxelGrid.collisions_py
        self.assertTrue(callable(vxs.VoxelGrid.collisions_py))


class TestReadOnlyInstances(unittest.TestCase):
    def test_replacing_a_method_on_an_instance_is_refused(self):
        cases = [(vxs.Agent(0), "get_pos"), (vxs.VoxelGrid(), "collisions_py"),
                 (vxs.FilterWorld(), "is_updating_py"), (vxs.MoveDir.up(), "opposite")]
        for instance, name in cases:
            with self.subTest(cls=type(instance).__name__):
                with self.assertRaises(AttributeError):
                    setattr(instance, name, lambda *a: None)

    def test_new_public_instance_attributes_are_refused(self):
        for instance in (vxs.Agent(0), vxs.FilterWorld(), vxs.EnvState.default_py()):
            with self.subTest(cls=type(instance).__name__):
                with self.assertRaises(AttributeError):
                    instance.note = "x"

    def test_camera_projection_fields_stay_writable_like_pyo3_set_all(self):
        proj = vxs.CameraProjection.default_py()
        proj.aspect = 2.0
        self.assertEqual(proj.aspect, 2.0)


if __name__ == "__main__":
    unittest.main()
