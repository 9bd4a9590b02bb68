"""How the networks' depth follows from the model input side (128 for objects, 64 for texture patches)."""
import math

from errors import ConfigError

# Filter multipliers of the paper's Fig. 3 (times the channel multiplier c).
GENERATOR_MULTIPLIERS = (16, 8, 4, 3, 2, 1)
ENCODER_MULTIPLIERS = (1, 2, 3, 4, 8, 16)  # all pooled but the last
ENCODER_POOLED_BLOCKS = 5
GENERATOR_START_SIDE = 2


def check_input_side(side):
    """The encoder halves the side 5 times and the generator starts from 2x2: the side must be 2^k, k >= 5."""
    if side < 32 or 2 ** int(round(math.log2(side))) != side:
        raise ConfigError(f"model input side {side} is not supported: use a power of two >= 32 "
                          "(e.g. 64 for texture patches, 128 for objects) via --image_size/--patch_size")
    return side


def generator_plan(side):
    """(start_side, [upsample? per block]) so that the output is side x side.

    Objects (128): start at 2x2 and every block upsamples. Textures (64): the first block does not.
    Larger inputs (256, ...) start from a larger map so all six blocks still upsample.
    """
    check_input_side(side)
    blocks = len(GENERATOR_MULTIPLIERS)
    start = max(GENERATOR_START_SIDE, side // 2 ** blocks)
    upsampling_blocks = int(math.log2(side // start))
    return start, [i >= blocks - upsampling_blocks for i in range(blocks)]


def encoder_output_side(side):
    check_input_side(side)
    return side // 2 ** ENCODER_POOLED_BLOCKS
