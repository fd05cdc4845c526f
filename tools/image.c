/* JPEG/PNG decoding, PIL-exact bilinear resize and ImageNet preprocessing
 * (see image.h). */
#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef KILN_HAVE_JPEG
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#endif
#ifdef KILN_HAVE_PNG
#include <png.h>
#endif

/* ---- formats --------------------------------------------------------------------- */

kc_image_kind kc_image_sniff(const unsigned char *h, size_t n) {
    if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return KC_IMAGE_JPEG;
    if (n >= 8 && memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0) return KC_IMAGE_PNG;
    return KC_IMAGE_NONE;
}

/* Name of another picture format recognized by its first bytes, or NULL. */
static const char *kc_image_other(const unsigned char *h, size_t n) {
    if (n >= 6 && (memcmp(h, "GIF87a", 6) == 0 || memcmp(h, "GIF89a", 6) == 0)) return "GIF";
    if (n >= 2 && h[0] == 'B' && h[1] == 'M') return "BMP";
    if (n >= 12 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WEBP", 4) == 0) return "WebP";
    if (n >= 4 && (memcmp(h, "II*\0", 4) == 0 || memcmp(h, "MM\0*", 4) == 0)) return "TIFF";
    if (n >= 12 && memcmp(h + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    return NULL;
}

bool kc_image_extension(const char *path) {
    static const char *const exts[] = {".jpg", ".jpeg", ".jpe", ".jfif", ".png",  ".gif",
                                       ".bmp", ".webp", ".tif", ".tiff", ".heic", ".avif"};
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t el = strlen(exts[i]);
        if (len > el && strcasecmp(path + len - el, exts[i]) == 0) return true;
    }
    return false;
}

const char *kc_image_decoders(void) {
#if defined(KILN_HAVE_JPEG) && defined(KILN_HAVE_PNG)
    return "JPEG, PNG";
#elif defined(KILN_HAVE_JPEG)
    return "JPEG";
#elif defined(KILN_HAVE_PNG)
    return "PNG";
#else
    return "none";
#endif
}

void kc_image_free(kc_image *img) {
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

/* Largest image side accepted (libjpeg's own limit is 65500). */
#define KC_IMAGE_MAX_SIDE 65535
#define KC_IMAGE_MAX_PIXELS ((size_t)1 << 28)

#if defined(KILN_HAVE_JPEG) || defined(KILN_HAVE_PNG)
/* Allocate img for w x h RGB; false (with err) when too large or out of memory. */
static bool kc_image_alloc(kc_image *img, long w, long h, const char *path, char *err, size_t errsize) {
    if (w <= 0 || h <= 0 || w > KC_IMAGE_MAX_SIDE || h > KC_IMAGE_MAX_SIDE ||
        (size_t)w * (size_t)h > KC_IMAGE_MAX_PIXELS) {
        snprintf(err, errsize, "%s: image size %ldx%ld is not supported", path, w, h);
        return false;
    }
    img->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!img->rgb) {
        snprintf(err, errsize, "%s: out of memory for a %ldx%ld image", path, w, h);
        return false;
    }
    img->width = (int)w;
    img->height = (int)h;
    return true;
}
#endif

/* ---- JPEG ------------------------------------------------------------------------- */

#ifdef KILN_HAVE_JPEG
typedef struct kc_jpeg {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
    unsigned char *row; /* CMYK scanline */
} kc_jpeg;

/* libjpeg fatal error: keep the message and jump back. */
static void kc_jpeg_error_exit(j_common_ptr c) {
    kc_jpeg *j = (kc_jpeg *)c->client_data;
    c->err->format_message(c, j->msg);
    longjmp(j->jb, 1);
}

/* libjpeg warnings are silent, except a premature end of data, which PIL
 * also refuses ("image file is truncated"). */
static void kc_jpeg_emit(j_common_ptr c, int level) {
    kc_jpeg *j = (kc_jpeg *)c->client_data;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) j->truncated = true;
}

/* PIL's CMYK -> RGB (Convert.c, cmyk2rgb): x = nk - x * nk / 255, rounded. */
static uint8_t kc_cmyk_channel(unsigned x, unsigned nk) {
    unsigned t = x * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Decode the JPEG in f (already opened) into img. */
static bool kc_jpeg_load(FILE *f, const char *path, kc_image *img, char *err, size_t errsize) {
    kc_jpeg *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errsize, "%s: out of memory", path);
        return false;
    }
    j->cinfo.err = jpeg_std_error(&j->mgr);
    j->mgr.error_exit = kc_jpeg_error_exit;
    j->mgr.emit_message = kc_jpeg_emit;
    j->cinfo.client_data = j;
    if (setjmp(j->jb)) {
        snprintf(err, errsize, "%s: not a readable JPEG image: %s", path, j->msg);
        jpeg_destroy_decompress(&j->cinfo);
        kc_image_free(img);
        free(j->row);
        free(j);
        return false;
    }
    jpeg_create_decompress(&j->cinfo);
    jpeg_stdio_src(&j->cinfo, f);
    jpeg_read_header(&j->cinfo, TRUE);
    bool cmyk = j->cinfo.jpeg_color_space == JCS_CMYK || j->cinfo.jpeg_color_space == JCS_YCCK;
    j->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&j->cinfo);
    if (!kc_image_alloc(img, (long)j->cinfo.output_width, (long)j->cinfo.output_height, path, err, errsize)) {
        jpeg_destroy_decompress(&j->cinfo);
        free(j);
        return false;
    }
    size_t w = (size_t)img->width;
    if (cmyk && !(j->row = malloc(w * 4))) {
        snprintf(j->msg, sizeof j->msg, "out of memory");
        longjmp(j->jb, 1);
    }
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        uint8_t *dst = img->rgb + (size_t)j->cinfo.output_scanline * w * 3;
        JSAMPROW row = cmyk ? j->row : dst;
        if (jpeg_read_scanlines(&j->cinfo, &row, 1) != 1) break;
        if (cmyk) /* Adobe CMYK is stored inverted; PIL reads it as "CMYK;I". */
            for (size_t x = 0; x < w; x++) {
                unsigned nk = j->row[4 * x + 3];
                for (int c = 0; c < 3; c++) dst[3 * x + c] = kc_cmyk_channel(255u - j->row[4 * x + c], nk);
            }
    }
    if (j->truncated) {
        snprintf(j->msg, sizeof j->msg, "the file is truncated");
        longjmp(j->jb, 1);
    }
    jpeg_finish_decompress(&j->cinfo);
    jpeg_destroy_decompress(&j->cinfo);
    free(j->row);
    free(j);
    return true;
}
#endif

/* ---- PNG -------------------------------------------------------------------------- */

#ifdef KILN_HAVE_PNG
typedef struct kc_png {
    png_structp png;
    png_infop info;
    png_bytep *rows;
    char msg[256];
} kc_png;

/* libpng fatal error: keep the message and jump back. */
static void kc_png_error(png_structp png, png_const_charp msg) {
    kc_png *p = png_get_error_ptr(png);
    snprintf(p->msg, sizeof p->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* libpng warnings are silent (PIL ignores them too). */
static void kc_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Decode the PNG in f (already opened) into img. */
static bool kc_png_load(FILE *f, const char *path, kc_image *img, char *err, size_t errsize) {
    kc_png *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errsize, "%s: out of memory", path);
        return false;
    }
    p->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, p, kc_png_error, kc_png_warning);
    p->info = p->png ? png_create_info_struct(p->png) : NULL;
    if (!p->info) {
        png_destroy_read_struct(p->png ? &p->png : NULL, NULL, NULL);
        free(p);
        snprintf(err, errsize, "%s: out of memory", path);
        return false;
    }
    if (setjmp(png_jmpbuf(p->png))) {
        snprintf(err, errsize, "%s: not a readable PNG image: %s", path,
                 strcmp(p->msg, "Read Error") == 0 ? "the file is truncated" : p->msg);
        png_destroy_read_struct(&p->png, &p->info, NULL);
        kc_image_free(img);
        free(p->rows);
        free(p);
        return false;
    }
    png_init_io(p->png, f);
    png_set_user_limits(p->png, KC_IMAGE_MAX_SIDE, KC_IMAGE_MAX_SIDE);
    png_read_info(p->png, p->info);
    int color = png_get_color_type(p->png, p->info);
    int depth = png_get_bit_depth(p->png, p->info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(p->png);
    if (depth == 16) png_set_strip_16(p->png);
    png_set_strip_alpha(p->png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p->png);
    png_set_interlace_handling(p->png);
    png_read_update_info(p->png, p->info);
    long w = (long)png_get_image_width(p->png, p->info), h = (long)png_get_image_height(p->png, p->info);
    if (!kc_image_alloc(img, w, h, path, p->msg, sizeof p->msg)) png_longjmp(p->png, 1);
    if (png_get_rowbytes(p->png, p->info) != (size_t)w * 3) {
        snprintf(p->msg, sizeof p->msg, "unexpected row layout after conversion to RGB");
        png_longjmp(p->png, 1);
    }
    if (!(p->rows = malloc((size_t)h * sizeof *p->rows))) {
        snprintf(p->msg, sizeof p->msg, "out of memory");
        png_longjmp(p->png, 1);
    }
    for (long y = 0; y < h; y++) p->rows[y] = img->rgb + (size_t)y * (size_t)w * 3;
    png_read_image(p->png, p->rows);
    png_read_end(p->png, NULL);
    png_destroy_read_struct(&p->png, &p->info, NULL);
    free(p->rows);
    free(p);
    return true;
}
#endif

/* Printable start of a file, for "it starts with ..." messages. */
static void kc_image_preview(const unsigned char *h, size_t n, char *buf, size_t size) {
    size_t pos = 0;
    for (size_t i = 0; i < n && i < 16 && pos + 5 < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, isprint(h[i]) ? "%c" : "\\x%02x", h[i]);
    buf[pos] = 0;
}

bool kc_image_load(const char *path, kc_image *img, char *err, size_t errsize) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsize, errno == ENOENT ? "no such file '%s'" : "cannot open '%s': %s", path,
                 strerror(errno));
        return false;
    }
    unsigned char head[16];
    size_t n = fread(head, 1, sizeof head, f);
    kc_image_kind kind = kc_image_sniff(head, n);
    bool ok = false;
    if (kind == KC_IMAGE_NONE) {
        const char *other = kc_image_other(head, n);
        char preview[96];
        kc_image_preview(head, n, preview, sizeof preview);
        if (other)
            snprintf(err, errsize, "'%s' is a %s image; only JPEG and PNG images are supported", path, other);
        else if (n == 0)
            snprintf(err, errsize, "'%s' is empty (0 bytes), not a JPEG or PNG image", path);
        else
            snprintf(err, errsize, "'%s' is not a JPEG or PNG image (it starts with \"%s\")", path, preview);
    } else if (fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errsize, "cannot read '%s': %s", path, strerror(errno));
    } else if (kind == KC_IMAGE_JPEG) {
#ifdef KILN_HAVE_JPEG
        ok = kc_jpeg_load(f, path, img, err, errsize);
#else
        snprintf(err, errsize,
                 "'%s' is a JPEG image, but this kiln was built without JPEG support "
                 "(install libjpeg62-turbo-dev and rebuild)", path);
#endif
    } else {
#ifdef KILN_HAVE_PNG
        ok = kc_png_load(f, path, img, err, errsize);
#else
        snprintf(err, errsize,
                 "'%s' is a PNG image, but this kiln was built without PNG support "
                 "(install libpng-dev and rebuild)", path);
#endif
    }
    fclose(f);
    return ok;
}

/* ---- PIL's resampling (Pillow src/libImaging/Resample.c) -------------------------- */

#define KC_PRECISION_BITS (32 - 8 - 2)

/* Coefficients of one axis: for output pixel i, input pixels
 * bounds[2i] .. bounds[2i] + bounds[2i+1] - 1 with weights kk[i * ksize ...]. */
typedef struct kc_coeffs {
    int ksize;
    int *bounds;
    int32_t *kk;
} kc_coeffs;

/* PIL's bilinear (triangle) filter, support 1. */
static double kc_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* precompute_coeffs + normalize_coeffs_8bpc for in_size -> out_size. */
static bool kc_coeffs_make(int in_size, int out_size, kc_coeffs *c) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->kk = malloc((size_t)out_size * (size_t)ksize * sizeof *c->kk);
    double *k = malloc((size_t)ksize * sizeof *k);
    if (!c->bounds || !c->kk || !k) {
        free(k);
        return false;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x = 0;
        for (; x < xmax; x++) {
            double w = kc_bilinear((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        int32_t *kk = c->kk + (size_t)xx * (size_t)ksize;
        for (x = 0; x < ksize; x++)
            kk[x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << KC_PRECISION_BITS))
                             : (int32_t)(0.5 + k[x] * (1 << KC_PRECISION_BITS));
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(k);
    return true;
}

static void kc_coeffs_free(kc_coeffs *c) {
    free(c->bounds);
    free(c->kk);
}

/* PIL's clip8: fixed-point sum to a byte. */
static uint8_t kc_clip8(int32_t v) {
    v >>= KC_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

bool kc_image_resize(const kc_image *in, int width, int height, kc_image *out) {
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0) return false;
    bool need_h = width != in->width, need_v = height != in->height;
    kc_coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    bool ok = false;
    if (!kc_coeffs_make(in->width, width, &ch) || !kc_coeffs_make(in->height, height, &cv)) goto done;
    /* Rows of the source that the vertical pass reads. */
    int first = cv.bounds[0], last = cv.bounds[height * 2 - 2] + cv.bounds[height * 2 - 1];
    const uint8_t *src = in->rgb;
    int src_w = in->width;
    if (need_h) {
        if (!need_v) first = 0, last = in->height;
        for (int i = 0; i < height; i++) cv.bounds[i * 2] -= first;
        tmp = malloc((size_t)width * (size_t)(last - first) * 3);
        if (!tmp) goto done;
        for (int y = first; y < last; y++) {
            const uint8_t *row = in->rgb + (size_t)y * (size_t)in->width * 3;
            uint8_t *o = tmp + (size_t)(y - first) * (size_t)width * 3;
            for (int xx = 0; xx < width; xx++) {
                int xmin = ch.bounds[xx * 2], xmax = ch.bounds[xx * 2 + 1];
                const int32_t *k = ch.kk + (size_t)xx * (size_t)ch.ksize;
                for (int c = 0; c < 3; c++) {
                    int32_t ss = 1 << (KC_PRECISION_BITS - 1);
                    for (int x = 0; x < xmax; x++) ss += row[(x + xmin) * 3 + c] * k[x];
                    o[xx * 3 + c] = kc_clip8(ss);
                }
            }
        }
        src = tmp;
        src_w = width;
    }
    out->rgb = malloc((size_t)width * (size_t)height * 3);
    if (!out->rgb) goto done;
    out->width = width;
    out->height = height;
    if (need_v) {
        for (int yy = 0; yy < height; yy++) {
            int ymin = cv.bounds[yy * 2], ymax = cv.bounds[yy * 2 + 1];
            const int32_t *k = cv.kk + (size_t)yy * (size_t)cv.ksize;
            uint8_t *o = out->rgb + (size_t)yy * (size_t)width * 3;
            for (int xx = 0; xx < width * 3; xx++) {
                int32_t ss = 1 << (KC_PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * (size_t)src_w * 3 + (size_t)xx] * k[y];
                o[xx] = kc_clip8(ss);
            }
        }
    } else {
        memcpy(out->rgb, src, (size_t)width * (size_t)height * 3);
    }
    ok = true;
done:
    free(tmp);
    kc_coeffs_free(&ch);
    kc_coeffs_free(&cv);
    if (!ok) kc_image_free(out);
    return ok;
}

/* ---- ImageNet preprocessing ------------------------------------------------------- */

void kc_preprocess_defaults(kc_preprocess *p, int crop_h, int crop_w) {
    int side = crop_h < crop_w ? crop_h : crop_w;
    p->crop_h = crop_h;
    p->crop_w = crop_w;
    p->resize = (int)lround(side * 256.0 / 224.0);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->nhwc = false;
}

bool kc_preprocess_image(const kc_image *img, const kc_preprocess *p, float *out) {
    /* torchvision _compute_resized_output_size: the shorter side becomes
     * `resize`, the longer one int(resize * long / short). */
    int w = img->width, h = img->height;
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int new_long = (int)((double)p->resize * (double)longer / (double)shorter);
    int nw = w <= h ? p->resize : new_long, nh = w <= h ? new_long : p->resize;
    kc_image r;
    if (!kc_image_resize(img, nw, nh, &r)) return false;
    /* CenterCrop: pad (fill 0) when the crop is larger, then crop at
     * round((size - crop) / 2), Python's round (ties to even). */
    int pad_top = p->crop_h > nh ? (p->crop_h - nh) / 2 : 0;
    int pad_left = p->crop_w > nw ? (p->crop_w - nw) / 2 : 0;
    int ph = p->crop_h > nh ? p->crop_h : nh, pw = p->crop_w > nw ? p->crop_w : nw;
    int top = (int)nearbyint((ph - p->crop_h) / 2.0), left = (int)nearbyint((pw - p->crop_w) / 2.0);
    size_t plane = (size_t)p->crop_h * (size_t)p->crop_w;
    for (int y = 0; y < p->crop_h; y++)
        for (int x = 0; x < p->crop_w; x++) {
            int sy = y + top - pad_top, sx = x + left - pad_left;
            bool inside = sy >= 0 && sy < nh && sx >= 0 && sx < nw;
            const uint8_t *px = inside ? r.rgb + ((size_t)sy * (size_t)nw + (size_t)sx) * 3 : NULL;
            for (int c = 0; c < 3; c++) {
                float v = (float)(inside ? px[c] : 0) / 255.0f;
                v = (v - p->mean[c]) / p->std[c];
                if (p->nhwc) out[((size_t)y * (size_t)p->crop_w + (size_t)x) * 3 + (size_t)c] = v;
                else out[(size_t)c * plane + (size_t)y * (size_t)p->crop_w + (size_t)x] = v;
            }
        }
    kc_image_free(&r);
    return true;
}
