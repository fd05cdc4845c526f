/* examples/info.c — load an ONNX model with kiln's C API, print its inputs
 * and outputs, and check it.
 *
 *   cmake --install build            (or --prefix DIR, then PKG_CONFIG_PATH=DIR/lib/pkgconfig)
 *   gcc examples/info.c $(pkg-config --cflags --libs kiln) -o info
 *   ./info models/out/resnet18.onnx
 */
#include <stdio.h>
#include <kiln.h>

/* Print "name: float[batch,3,224,224]" for input (is_input) or output i. */
static void print_io(const kiln_model *model, int is_input, size_t i) {
    const char *name;
    kiln_dtype dtype;
    int rank;
    if (is_input)
        kiln_model_input_info(model, i, &name, &dtype, &rank);
    else
        kiln_model_output_info(model, i, &name, &dtype, &rank);
    printf("  %s %s: %s[", is_input ? "input " : "output", name, kiln_dtype_name(dtype));
    for (int axis = 0; axis < rank; axis++) {
        int64_t dim;
        const char *dim_name;
        if (is_input)
            kiln_model_input_dim(model, i, axis, &dim, &dim_name);
        else
            kiln_model_output_dim(model, i, axis, &dim, &dim_name);
        if (dim >= 0)
            printf("%s%lld", axis ? "," : "", (long long)dim);
        else
            printf("%s%s", axis ? "," : "", dim_name ? dim_name : "?");
    }
    printf("]\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.onnx\n", argv[0]);
        return 2;
    }
    kiln_model *model;
    if (kiln_model_load(argv[1], &model) != KILN_OK) {
        fprintf(stderr, "error: %s\n", kiln_last_error());
        return 1;
    }
    size_t n_in, n_out;
    kiln_model_input_count(model, &n_in);
    kiln_model_output_count(model, &n_out);
    printf("%s (kiln %s)\n", argv[1], kiln_version());
    for (size_t i = 0; i < n_in; i++) print_io(model, 1, i);
    for (size_t i = 0; i < n_out; i++) print_io(model, 0, i);

    kiln_check *check;
    size_t n_problems = 0, n_errors = 0;
    if (kiln_model_check(model, &check) != KILN_OK) {
        fprintf(stderr, "error: %s\n", kiln_last_error());
        kiln_model_destroy(model);
        return 1;
    }
    kiln_check_count(check, &n_problems);
    kiln_check_error_count(check, &n_errors);
    for (size_t i = 0; i < n_problems; i++) {
        kiln_check_severity severity;
        int64_t node;
        const char *message;
        kiln_check_problem(check, i, &severity, &node, &message);
        printf("  %s: %s\n", severity == KILN_CHECK_ERROR ? "error"
                             : severity == KILN_CHECK_WARNING ? "warning" : "unsupported", message);
    }
    printf("%s\n", n_errors ? "invalid" : "valid");
    kiln_check_destroy(check);
    kiln_model_destroy(model);
    return n_errors ? 1 : 0;
}
