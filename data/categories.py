"""MVTec AD categories: their type (object or texture), whether rotation augmentation applies, and their sizes.

The 15 official categories take their type and rotation flag from the tables below (paper, Sec. V-B):
objects are resized to 128x128 and the model sees the whole image; textures are resized to 512x512 and the
model sees 64x64 patches (random rotated crops for training, the non-overlapping 8x8 grid for testing).
Any other folder name is a custom category: type "object" unless told otherwise, sizes from the flags.
"""
from dataclasses import dataclass
from typing import Optional

from data.images import INTENSITY_MODES
from errors import ConfigError

TEXTURE_CATEGORIES = ("carpet", "grid", "leather", "tile", "wood")
OBJECT_CATEGORIES = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush",
                     "transistor", "zipper")
ROTATED_CATEGORIES = ("bottle", "hazelnut", "metal_nut", "screw")
ALL_CATEGORIES = TEXTURE_CATEGORIES + OBJECT_CATEGORIES

CATEGORY_TYPES = ("object", "texture")
DEFAULT_OBJECT_SIZE = 128
DEFAULT_TEXTURE_IMAGE_SIZE = 512
DEFAULT_TEXTURE_PATCH_SIZE = 64
DEFAULT_MAX_ROTATION_DEGREES = 45.0
MIN_MODEL_SIDE = 32  # the encoder halves the side 5 times (models/geometry.py)


@dataclass(frozen=True)
class CategorySpec:
    name: str
    type: str  # "object" | "texture"
    image_size: int  # side the whole image is resized to (128 objects, 512 textures)
    patch_size: int  # model input side (== image_size for objects, 64 for textures)
    rotate: bool
    max_rotation_degrees: float = DEFAULT_MAX_ROTATION_DEGREES
    intensity: str = "none"  # "per_image": each resized image standardized to one mean and std (data/images.py)

    @property
    def patches_per_image(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def is_texture(self) -> bool:
        return self.type == "texture"


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def spec_for(config) -> CategorySpec:
    """The spec of a TrainConfig's category (its flags override the tables); no TensorFlow needed."""
    return category_spec(config.category, type=config.type, image_size=config.image_size,
                         patch_size=config.patch_size, rotate=config.rotate, intensity=config.intensity)


def category_spec(name: str, type: Optional[str] = None, image_size: Optional[int] = None,
                  patch_size: Optional[int] = None, rotate: Optional[bool] = None,
                  max_rotation_degrees: Optional[float] = None, intensity: str = "none") -> CategorySpec:
    """The spec of a category; explicit arguments (from flags) override the official tables.

    Official categories: type and rotation from the tables. Custom categories: type "object", no rotation.
    Objects: image_size 128 and patch_size == image_size (giving only one of the two sets both).
    Textures: image_size 512 and patch_size 64; textures always train on randomly rotated crops.
    Raises ConfigError (one line, naming --image_size / --patch_size / --type) for unusable values.
    """
    if type is None:
        type = "texture" if name in TEXTURE_CATEGORIES else "object"
    if type not in CATEGORY_TYPES:
        raise ConfigError(f"--type must be one of {', '.join(CATEGORY_TYPES)}, got {type!r}")
    if rotate is None:
        rotate = type == "texture" or name in ROTATED_CATEGORIES
    if max_rotation_degrees is None:
        max_rotation_degrees = DEFAULT_MAX_ROTATION_DEGREES
    if not 0 <= float(max_rotation_degrees) <= 180:
        raise ConfigError(f"--max_rotation_degrees must be in [0, 180], got {max_rotation_degrees}")

    if intensity not in INTENSITY_MODES:
        raise ConfigError(f"--intensity must be one of {', '.join(INTENSITY_MODES)}, got {intensity!r}")
    for flag, value in (("--image_size", image_size), ("--patch_size", patch_size)):
        if value is not None and (isinstance(value, bool) or int(value) != value):
            raise ConfigError(f"{flag} must be an integer, got {value!r}")
    image_size = None if image_size is None else int(image_size)
    patch_size = None if patch_size is None else int(patch_size)

    if type == "object":
        if image_size is None and patch_size is None:
            image_size = patch_size = DEFAULT_OBJECT_SIZE
        elif image_size is None:
            image_size = patch_size
        elif patch_size is None:
            patch_size = image_size
        if patch_size != image_size:
            raise ConfigError(f"--patch_size ({patch_size}) must equal --image_size ({image_size}) for object "
                              "categories: the model sees the whole image (use --type=texture for patches)")
        model_flag = "--image_size"
    else:
        image_size = DEFAULT_TEXTURE_IMAGE_SIZE if image_size is None else image_size
        patch_size = DEFAULT_TEXTURE_PATCH_SIZE if patch_size is None else patch_size
        model_flag = "--patch_size"

    if patch_size < MIN_MODEL_SIDE or not _is_power_of_two(patch_size):
        raise ConfigError(f"{model_flag} {patch_size} is not a usable model input side: use a power of two "
                          f">= {MIN_MODEL_SIDE} (e.g. 64 for texture patches, 128 for objects)")
    if type == "texture" and (image_size < patch_size or image_size % patch_size != 0):
        raise ConfigError(f"--image_size {image_size} must be a multiple of --patch_size {patch_size} "
                          "for texture categories (e.g. 512 with 64)")
    return CategorySpec(name=name, type=type, image_size=image_size, patch_size=patch_size, rotate=bool(rotate),
                        max_rotation_degrees=float(max_rotation_degrees), intensity=intensity)
