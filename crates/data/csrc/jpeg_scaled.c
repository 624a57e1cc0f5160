/* Scaled JPEG decoding through libjpeg-turbo's libjpeg API (the system libjpeg62-turbo).
 *
 * libjpeg can run its inverse DCT at M/8 of full size (M = 1..8): each 8×8 block becomes M×M
 * pixels, so the IDCT, upsampling and colour conversion only touch the pixels kept. The entropy
 * decoding is the same as at full size. palisade_jpeg_decode_rgb picks the smallest M whose
 * output still covers the requested size on both sides, so the resize that follows only ever
 * shrinks. Errors never exit or print: they longjmp back here and come back as a message. */

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* Hands the caller-owned output buffer for a width × height RGB image, or NULL. */
typedef unsigned char *(*palisade_alloc_fn)(void *ctx, unsigned int width, unsigned int height);

struct palisade_err {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void palisade_error_exit(j_common_ptr cinfo) {
  struct palisade_err *err = (struct palisade_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

/* Warnings are ignored as PIL ignores them (e.g. extraneous bytes before a marker), except a
 * truncated file, which PIL also refuses: a row with a cut-off image is a bad row. */
static void palisade_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) palisade_error_exit(cinfo);
}

/* Decodes `data` to 8-bit RGB at the smallest scale M/8 among `scales` (bit M−1 set for each
 * allowed M) with both sides at least min_width × min_height (full size when none is, or when
 * both minimums are 0). Writes the image into the buffer `alloc` returns. Returns the chosen M
 * (1..8), or 0 with `message` set. */
int palisade_jpeg_decode_rgb(const unsigned char *data, unsigned long len, unsigned int min_width,
                             unsigned int min_height, unsigned int scales,
                             palisade_alloc_fn alloc, void *ctx, char *message,
                             size_t message_len) {
  struct jpeg_decompress_struct cinfo;
  struct palisade_err err;
  /* volatile: read after a longjmp. */
  volatile int created = 0;
  volatile int scale = 8;
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = palisade_error_exit;
  err.pub.emit_message = palisade_emit_message;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    snprintf(message, message_len, "%s", err.message);
    if (created) jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  jpeg_create_decompress(&cinfo);
  created = 1;
  jpeg_mem_src(&cinfo, (unsigned char *)data, len);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_denom = 8;
  if (min_width > 0 || min_height > 0) {
    for (scale = 1; scale < 8; scale++) {
      if (!(scales & (1u << (scale - 1)))) continue;
      cinfo.scale_num = (unsigned int)scale;
      jpeg_calc_output_dimensions(&cinfo);
      if (cinfo.output_width >= min_width && cinfo.output_height >= min_height) break;
    }
  }
  cinfo.scale_num = (unsigned int)scale;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    snprintf(message, message_len, "decoded to %d components, not RGB", cinfo.output_components);
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  unsigned char *out = alloc(ctx, cinfo.output_width, cinfo.output_height);
  if (out == NULL) {
    snprintf(message, message_len, "no memory for %u x %u pixels", cinfo.output_width,
             cinfo.output_height);
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  size_t stride = (size_t)cinfo.output_width * 3;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[4];
    JDIMENSION n = 0;
    for (; n < 4 && cinfo.output_scanline + n < cinfo.output_height; n++)
      rows[n] = out + (size_t)(cinfo.output_scanline + n) * stride;
    jpeg_read_scanlines(&cinfo, rows, n);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return scale;
}
