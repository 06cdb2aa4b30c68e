"""The shape catalogue: ``inception_core.shapes`` is generated data only (its types and geometry helpers
live in ``inception_core.shape_types``, which the generator imports), and the catalogue's output sizes
are torch's."""

import ast
import inspect

import torch
import torch.nn.functional as F

from inception_core import shape_types, shapes


def test_shapes_module_holds_data_only():
    tree = ast.parse(inspect.getsource(shapes))
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert shapes.ConvShape is shape_types.ConvShape and shapes.conv_geometries is shape_types.conv_geometries


def test_geometries_default_to_the_catalogue():
    assert shape_types.conv_geometries(("googlenet",)) == shape_types.conv_geometries(
        ("googlenet",), shapes.CONV_SHAPES)
    assert len(shape_types.pool_geometries()) == len(set(shape_types.pool_geometries()))


def test_pool_output_sizes_are_torchs():
    for s in shapes.POOL_SHAPES:
        if s.kind == "adaptive_avg":
            continue
        x = torch.empty(1, 1, *s.in_hw)
        pool = F.max_pool2d if s.kind == "max" else F.avg_pool2d
        assert pool(x, s.kernel, s.stride, s.padding, ceil_mode=s.ceil_mode).shape[2:] == s.out_hw, s
    for s in shapes.CONV_SHAPES[:20]:
        w = torch.empty(1, 1, *s.kernel)
        assert F.conv2d(torch.empty(1, 1, *s.in_hw), w, stride=s.stride, padding=s.padding).shape[2:] == s.out_hw
