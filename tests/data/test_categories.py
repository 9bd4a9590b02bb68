import pytest

from data.categories import (OBJECT_CATEGORIES, ROTATED_CATEGORIES, TEXTURE_CATEGORIES, CategorySpec,
                             category_spec)
from errors import ConfigError


def test_tables():
    assert len(TEXTURE_CATEGORIES) == 5 and len(OBJECT_CATEGORIES) == 10
    assert not set(TEXTURE_CATEGORIES) & set(OBJECT_CATEGORIES)
    assert set(ROTATED_CATEGORIES) <= set(OBJECT_CATEGORIES)


@pytest.mark.parametrize("name", TEXTURE_CATEGORIES)
def test_texture_defaults(name):
    spec = category_spec(name)
    assert (spec.type, spec.image_size, spec.patch_size, spec.patches_per_image) == ("texture", 512, 64, 64)
    assert spec.rotate and spec.max_rotation_degrees == 45


def test_object_defaults_and_rotation():
    assert category_spec("bottle") == CategorySpec("bottle", "object", 128, 128, True, 45.0)
    assert category_spec("cable").rotate is False
    assert category_spec("screw").rotate is True
    assert category_spec("bottle").patches_per_image == 1


def test_custom_and_overrides():
    custom = category_spec("my_parts")
    assert (custom.type, custom.image_size, custom.patch_size, custom.rotate) == ("object", 128, 128, False)
    tile = category_spec("magnetic_tile", type="texture", image_size=256, patch_size=32)
    assert (tile.type, tile.image_size, tile.patch_size, tile.patches_per_image) == ("texture", 256, 32, 64)
    assert category_spec("bottle", rotate=False).rotate is False
    assert category_spec("parts", image_size=256).patch_size == 256


@pytest.mark.parametrize("kwargs, flag", [
    (dict(type="texture", image_size=512, patch_size=48), "--patch_size"),
    (dict(type="texture", image_size=500, patch_size=64), "--image_size"),
    (dict(type="texture", image_size=512, patch_size=16), "--patch_size"),
    (dict(image_size=100), "--image_size"),
    (dict(image_size=128, patch_size=64), "--patch_size"),
    (dict(type="blob"), "--type"),
    (dict(intensity="global"), "--intensity"),
])
def test_bad_sizes_raise_config_error_naming_flag(kwargs, flag):
    with pytest.raises(ConfigError) as err:
        category_spec("custom", **kwargs)
    assert flag in str(err.value) and "\n" not in str(err.value)
