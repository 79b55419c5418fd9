#!/usr/bin/env python3
"""How long the system's TurboJPEG takes to decode a folder of JPEGs at full size and at reduced DCT
scales, with and without its fast flags, alternating in one process (for the fast-mode report under
bench-reports/): the decode alone, nothing after it, so the fast mode's floor on these files.

  taskset -c 1 tools/turbojpeg_scale_probe.py <folder of 4000x3000 .jpg> [rounds] [passes]

Prints, per variant, the ms per image of each round and their minimum, then whether the fast flags
change the decoded pixels at each reduced scale.
"""
import ctypes
import glob
import sys
import time

TJPF_RGBX = 2
TJFLAG_FASTUPSAMPLE = 256
TJFLAG_FASTDCT = 2048

tj = ctypes.CDLL("libturbojpeg.so.0")
tj.tjInitDecompress.restype = ctypes.c_void_p
tj.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + [ctypes.POINTER(ctypes.c_int)] * 4
tj.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                             ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]

folder = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
passes = int(sys.argv[3]) if len(sys.argv) > 3 else 3
handle = tj.tjInitDecompress()
files = [open(f, "rb").read() for f in sorted(glob.glob(folder + "/*.jpg"))]
w, h, sub, cs = (ctypes.c_int() for _ in range(4))
assert tj.tjDecompressHeader3(handle, files[0], len(files[0]), w, h, sub, cs) == 0
width, height = w.value, h.value
buf = ctypes.create_string_buffer(width * height * 4)


def size(d):
    return (width + d - 1) // d, (height + d - 1) // d


def decode(data, d, flags):
    dw, dh = size(d)
    if tj.tjDecompress2(handle, data, len(data), buf, dw, dw * 4, dh, TJPF_RGBX, flags) != 0:
        raise RuntimeError("decode failed")
    return dw * dh * 4


def timed(d, flags, n):
    start = time.perf_counter()
    for _ in range(n):
        for data in files:
            decode(data, d, flags)
    return (time.perf_counter() - start) * 1000 / (n * len(files))


variants = [("full", 1, 0), ("1/8", 8, 0), ("1/8 fast upsample + fast IDCT", 8, TJFLAG_FASTUPSAMPLE | TJFLAG_FASTDCT),
            ("1/4", 4, 0), ("1/4 fast upsample + fast IDCT", 4, TJFLAG_FASTUPSAMPLE | TJFLAG_FASTDCT)]
print(f"{len(files)} files of {width}x{height}, {sum(map(len, files)) // len(files) // 1000} KB on average ({folder})")
for _, d, flags in variants:
    timed(d, flags, 1)  # warm-up
results = {label: [] for label, _, _ in variants}
for _ in range(rounds):
    for label, d, flags in variants:
        results[label].append(timed(d, flags, 1 if d == 1 else passes))
for label, d, _ in variants:
    v = results[label]
    print(f"{label} ({size(d)[0]}x{size(d)[1]}): {' '.join(f'{x:.3f}' for x in v)} ms/image; min {min(v):.3f}")
for d in (8, 4):
    same = True
    for data in files:
        n = decode(data, d, 0)
        plain = buf.raw[:n]
        decode(data, d, TJFLAG_FASTUPSAMPLE | TJFLAG_FASTDCT)
        same &= plain == buf.raw[:n]
    print(f"1/{d}: the fast flags {'leave every pixel as it was' if same else 'change pixels'}")
