/*
 * image.h — images for the kiln command: JPEG (libjpeg) and PNG (libpng)
 * decoding to 8-bit RGB, PIL-exact bilinear resizing, and torchvision's
 * ImageNet preprocessing:
 *
 *   Resize(resize)          shorter side to `resize`, longer side scaled and
 *                           truncated, PIL's BILINEAR filter (a triangle
 *                           filter widened by the scale when downscaling,
 *                           i.e. antialiased), 8-bit fixed point as PIL does
 *   CenterCrop(crop)        offsets round((size - crop) / 2), ties to even
 *   ToTensor()              x / 255 as float32
 *   Normalize(mean, std)    (x - mean) / std per channel, float32
 *
 * Images are converted to RGB as PIL's Image.convert('RGB') does: gray is
 * replicated, alpha is dropped (not composited), palettes are expanded,
 * 16-bit samples keep their high byte (as PIL does for 16-bit RGB; for
 * 16-bit grayscale PIL saturates every value above 255 to white, which is
 * not followed here).  CMYK JPEGs are converted with PIL's formula.  EXIF
 * orientation is ignored, as PIL and torchvision ignore it.
 *
 * Decoders are compiled in when KILN_HAVE_JPEG / KILN_HAVE_PNG are defined
 * (tools/image.cmake); without them loading such a file fails with "built
 * without JPEG support".
 */
#ifndef KILN_TOOLS_IMAGE_H
#define KILN_TOOLS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An 8-bit RGB image, rows top to bottom, pixels interleaved R G B. */
typedef struct kc_image {
    int width, height;
    uint8_t *rgb; /* width * height * 3 bytes, malloc'ed */
} kc_image;

typedef enum kc_image_kind { KC_IMAGE_NONE = 0, KC_IMAGE_JPEG, KC_IMAGE_PNG } kc_image_kind;

/* The format announced by the first bytes of a file (n of them). */
kc_image_kind kc_image_sniff(const unsigned char *head, size_t n);
/* True when `path` has an image file extension (.jpg .jpeg .png and other
 * picture formats), whatever its contents. */
bool kc_image_extension(const char *path);
/* Which decoders this build has: "JPEG, PNG", "PNG", ... or "none". */
const char *kc_image_decoders(void);

/* Decode the JPEG or PNG file at `path` to RGB.  On failure writes a
 * one-line reason naming the file into err and returns false. */
bool kc_image_load(const char *path, kc_image *out, char *err, size_t errsize);
void kc_image_free(kc_image *img);

/* Resize `in` to width x height with PIL's Image.resize(BILINEAR) (exact
 * to the bit).  false when out of memory. */
bool kc_image_resize(const kc_image *in, int width, int height, kc_image *out);

/* ImageNet preprocessing parameters; see the top of this file. */
typedef struct kc_preprocess {
    int resize;          /* shorter side after Resize (256) */
    int crop_h, crop_w;  /* CenterCrop size (224 x 224) */
    float mean[3], std[3];
    bool nhwc;           /* write H x W x 3 instead of 3 x H x W */
} kc_preprocess;

/* torchvision's ImageNet defaults for a crop_h x crop_w input: resize to
 * round(256/224 * min(crop_h, crop_w)), mean (0.485, 0.456, 0.406), std
 * (0.229, 0.224, 0.225). */
void kc_preprocess_defaults(kc_preprocess *p, int crop_h, int crop_w);

/* Preprocess `img` into `out`: 3 * crop_h * crop_w floats.  Crops larger
 * than the resized image are zero-padded as torchvision pads.  false when
 * out of memory. */
bool kc_preprocess_image(const kc_image *img, const kc_preprocess *p, float *out);

#endif
