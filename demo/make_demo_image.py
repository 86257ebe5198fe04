"""Draw demo/demo.png, the small synthetic scene `make demo` feeds to `mmbackbones show`.

Our own drawing (no third-party photo): a sky gradient, a sun, hills, a house, a checkerboard
and stripes of several frequencies, so edges, textures and blobs of different scales show up in
the feature maps of the different stages. Deterministic: rerunning gives the same PNG.

    python demo/make_demo_image.py [-o demo/demo.png]
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 320, 240


def draw() -> Image.Image:
    y = np.linspace(0.0, 1.0, HEIGHT)[:, None]
    sky = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    sky[..., 0] = 90 + 120 * y          # deep blue at the top, pale near the horizon
    sky[..., 1] = 150 + 80 * y
    sky[..., 2] = np.full_like(y, 235.0)
    image = Image.fromarray(sky.clip(0, 255).astype(np.uint8), 'RGB')
    d = ImageDraw.Draw(image)

    d.ellipse((236, 18, 290, 72), fill=(255, 214, 64), outline=(240, 160, 30), width=3)  # sun
    d.polygon([(0, 170), (70, 110), (140, 160), (210, 100), (320, 165), (320, 240), (0, 240)],
              fill=(70, 140, 70))                                                    # hills
    d.rectangle((0, 190, 320, 240), fill=(110, 170, 80))                            # meadow

    d.rectangle((40, 140, 120, 205), fill=(200, 80, 60), outline=(90, 30, 20), width=2)  # house
    d.polygon([(32, 142), (80, 102), (128, 142)], fill=(120, 60, 40))
    d.rectangle((70, 170, 90, 205), fill=(80, 50, 30))                               # door
    d.rectangle((50, 152, 64, 166), fill=(230, 240, 255), outline=(40, 40, 40))      # window

    cell = 10                                                                        # checkerboard
    for row in range(6):
        for col in range(6):
            if (row + col) % 2 == 0:
                x0, y0 = 160 + col * cell, 150 + row * cell
                d.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=(20, 20, 20))
    for i, period in enumerate((4, 8, 16)):                                          # stripes
        x0 = 236 + i * 28
        for x in range(x0, x0 + 24):
            if (x // (period // 2)) % 2 == 0:
                d.line([(x, 150), (x, 225)], fill=(245, 245, 245))
    d.ellipse((176, 30, 216, 70), outline=(255, 255, 255), width=4)                 # a ring
    return image


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-o', '--out', default=os.path.join(os.path.dirname(__file__),
                                                            'demo.png'))
    args = parser.parse_args(argv)
    draw().save(args.out, optimize=True)
    print(f'wrote {args.out} ({WIDTH}x{HEIGHT})')


if __name__ == '__main__':
    main()
