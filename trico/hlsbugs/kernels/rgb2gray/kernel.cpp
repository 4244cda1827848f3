// RGB to grayscale (BT.601 integer weights 77/150/29, >> 8) with a brightness threshold mask.
#include <cstdint>
#define PIX 64
// tb: thresh=128

void rgb2gray(const uint8_t rgb[PIX * 3], uint8_t gray[PIX], uint8_t mask[PIX], int thresh) {
#pragma HLS INTERFACE mode=m_axi port=rgb offset=slave bundle=gmem0 depth=192
#pragma HLS INTERFACE mode=m_axi port=gray offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=m_axi port=mask offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=s_axilite port=thresh
#pragma HLS INTERFACE mode=s_axilite port=return
  for (int p = 0; p < PIX; p++) {
#pragma HLS PIPELINE II=1
    uint8_t r = rgb[p * 3 + 0];
    uint8_t g = rgb[p * 3 + 1];
    uint8_t b = rgb[p * 3 + 2];
    uint16_t y = (uint16_t)((77 * r + 150 * g + 29 * b) >> 8);
    gray[p] = (uint8_t)y;
    mask[p] = y > thresh ? 255 : 0;
  }
}
