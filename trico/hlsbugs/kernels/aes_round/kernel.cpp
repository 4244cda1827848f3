// One AES-128 encryption round on BLOCKS blocks: SubBytes, ShiftRows, MixColumns, AddRoundKey.
// The S-box is computed on chip (GF(2^8) inverse then the affine map) into a local table.
#include <cstdint>
#define BLOCKS 4

static uint8_t xtime(uint8_t v) { return (uint8_t)((v << 1) ^ ((v & 0x80u) ? 0x1Bu : 0x00u)); }

static uint8_t gmul(uint8_t a, uint8_t b) {
  uint8_t p = 0;
  for (int i = 0; i < 8; i++) {
#pragma HLS UNROLL
    if (b & 1u) p ^= a;
    a = xtime(a);
    b = (uint8_t)(b >> 1);
  }
  return p;
}

static uint8_t rotl8(uint8_t v, int n) { return (uint8_t)((v << n) | (v >> (8 - n))); }

void aes_round(const uint8_t in[BLOCKS * 16], const uint8_t key[16], uint8_t out[BLOCKS * 16]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=key offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  uint8_t sbox[256];
  uint8_t k_buf[16];
  uint8_t st[16];
  uint8_t sh[16];
#pragma HLS ARRAY_PARTITION variable=st type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=sh type=complete dim=1
  for (int v = 0; v < 256; v++) {
#pragma HLS PIPELINE II=1
    uint8_t inv = 0;
    for (int c = 1; c < 256; c++) {
      if (gmul((uint8_t)v, (uint8_t)c) == 1) inv = (uint8_t)c;
    }
    uint8_t s = inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63u;
    sbox[v] = s;
  }
  for (int i = 0; i < 16; i++) {
#pragma HLS PIPELINE II=1
    k_buf[i] = key[i];
  }
blocks:
  for (int blk = 0; blk < BLOCKS; blk++) {
    for (int i = 0; i < 16; i++) {
#pragma HLS PIPELINE II=1
      st[i] = sbox[in[blk * 16 + i]];
    }
    for (int r = 0; r < 4; r++) {
      for (int c = 0; c < 4; c++) {
#pragma HLS PIPELINE II=1
        sh[c * 4 + r] = st[((c + r) % 4) * 4 + r];
      }
    }
    for (int c = 0; c < 4; c++) {
#pragma HLS PIPELINE II=1
      uint8_t a0 = sh[c * 4 + 0];
      uint8_t a1 = sh[c * 4 + 1];
      uint8_t a2 = sh[c * 4 + 2];
      uint8_t a3 = sh[c * 4 + 3];
      out[blk * 16 + c * 4 + 0] = (uint8_t)(gmul(a0, 2) ^ gmul(a1, 3) ^ a2 ^ a3 ^ k_buf[c * 4 + 0]);
      out[blk * 16 + c * 4 + 1] = (uint8_t)(a0 ^ gmul(a1, 2) ^ gmul(a2, 3) ^ a3 ^ k_buf[c * 4 + 1]);
      out[blk * 16 + c * 4 + 2] = (uint8_t)(a0 ^ a1 ^ gmul(a2, 2) ^ gmul(a3, 3) ^ k_buf[c * 4 + 2]);
      out[blk * 16 + c * 4 + 3] = (uint8_t)(gmul(a0, 3) ^ a1 ^ a2 ^ gmul(a3, 2) ^ k_buf[c * 4 + 3]);
    }
  }
}
