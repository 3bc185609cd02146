"""The frame format every pixel env produces: (4, 84, 84) uint8, four stacked 84x84 grayscale
frames (oldest first), each observation four emulator frames apart."""

FRAME_SIZE = 84
STACK = 4
FRAME_SKIP = 4
