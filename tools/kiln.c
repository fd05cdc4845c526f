/* kiln — command-line front end: subcommand dispatch, help and version. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct kc_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *help;
    bool hidden; /* not listed in the general help */
    void (*help_fn)(FILE *f); /* prints the help instead of `help` when set */
} kc_command;

static const kc_command kc_commands[] = {
    {"info", kc_cmd_info, "describe a model: inputs, outputs, operators, parameters, MACs",
     "usage: kiln info MODEL|ENGINE [--json] [--shapes | --layers]\n"
     "\n"
     "Describe an ONNX model: IR version, producer, opset imports, metadata,\n"
     "graph inputs and outputs with their types (symbolic dims by name), an\n"
     "operator histogram (subgraph nodes included), parameter count and bytes,\n"
     "external data files, and the multiply-accumulate count (MACs) of Conv,\n"
     "ConvTranspose, Gemm and MatMul-like nodes at the declared shapes, with\n"
     "symbolic dimensions taken as 1.\n"
     "\n"
     "MODEL is a path to a .onnx file, or - to read the model from stdin.\n"
     "\n"
     "ENGINE is a kiln engine file (kiln build): its format version, the kiln\n"
     "that built it, the model's SHA-256, providers, CPU features used,\n"
     "precision, threads, profiles, nodes before and after optimization, the\n"
     "arena beside the sum of intermediate tensors, inputs and outputs, and\n"
     "with --layers every layer with its op, provider, tactic and fused nodes.\n"
     "\n"
     "flags:\n"
     "  --json      write machine-readable JSON to stdout\n"
     "  --shapes    also list every tensor of the main graph with its inferred type\n"
     "  --layers    (engine) list every layer\n"
     "  --verbose   same as --shapes\n"
     "  --help      show this help\n"
     "\n"
     "exit status: 0 ok, 1 the model could not be loaded, 2 usage error\n", false, NULL},
    {"check", kc_cmd_check, "check a model against the ONNX rules and list what kiln cannot run yet",
     "usage: kiln check MODEL [--json] [--strict]\n"
     "\n"
     "Check an ONNX model against the ONNX rules (what onnx.checker checks, and\n"
     "more).  Prints 'MODEL: valid' when there are no errors; otherwise every\n"
     "problem, one per line.  Warnings and the operators kiln cannot run yet\n"
     "(domain, op, opset) are printed too, but only fail the check with --strict.\n"
     "\n"
     "MODEL is a path to a .onnx file, or - to read the model from stdin.\n"
     "\n"
     "flags:\n"
     "  --json      write machine-readable JSON to stdout\n"
     "  --strict    also fail on warnings and unsupported operators\n"
     "  --help      show this help\n"
     "\n"
     "exit status: 0 valid, 1 invalid or could not be loaded, 2 usage error\n", false, NULL},
    {"run", kc_cmd_run, "run a model on .npy/.pb/.bin files or images; print top-k classes",
     "usage: kiln run MODEL|ENGINE --input FILE [--input NAME=FILE ...] [FLAGS]\n"
     "\n"
     "Run MODEL once on the CPU and print every output: type, shape, min, max,\n"
     "mean and the first values, or the top-k classes with --topk.  A model runs\n"
     "through a session (built in memory, or taken from the engine cache with\n"
     "--cache); an engine file (kiln build) runs in an execution context.\n"
     "\n"
     "Inputs (--input, repeatable):\n"
     "  FILE.npy          a NumPy array (v1/v2/v3, C order; f2 f4 f8 i1-i8 u1-u8 b1)\n"
     "  FILE.pb           an ONNX TensorProto (as in the ONNX test data sets)\n"
     "  FILE.bin          raw little-endian data; give --shape (and --dtype) unless the\n"
     "                    input's shape is fixed\n"
     "  IMAGE.jpg / .png  a picture, preprocessed as torchvision's ImageNet transform:\n"
     "                    Resize(256) (PIL bilinear, antialiased), CenterCrop(224),\n"
     "                    ToTensor(), Normalize(mean=(0.485,0.456,0.406),\n"
     "                    std=(0.229,0.224,0.225)); crop and resize follow the\n"
     "                    input's H and W (224 -> 256).  Several images make a batch.\n"
     "FILE binds to the next input not given yet; NAME=FILE to the input NAME.\n"
     "Arrays of another numeric type than the input's are converted.\n"
     "\n"
     "flags:\n"
     "  --input FILE        an input (see above); repeat for several inputs or images\n"
     "  --shape SPEC        shape of .bin and random inputs: 1x3x224x224, or\n"
     "                      NAME:1x3x224x224,NAME2:1x128 for several inputs\n"
     "  --dtype TYPE        element type of .bin files (float32, float16, int64, uint8...)\n"
     "  --random            seeded random values for the inputs not given\n"
     "  --seed N            random seed (default 0)\n"
     "  --batch N           size of a dynamic first axis of random inputs (default 1)\n"
     "  --resize N          image Resize size (default 256 for a 224 crop)\n"
     "  --crop N            image CenterCrop size (default: the input's H and W, or 224)\n"
     "  --topk K            print the K most likely classes of each row of every [N, C]\n"
     "                      output: index, probability (softmax of the scores) and label\n"
     "  --labels FILE       class labels, one per line (with --topk)\n"
     "  --output DIR        write every output as DIR/NAME.npy\n"
     "  --dump-input DIR    write every input, after preprocessing, as DIR/NAME.npy\n"
     "  --threads N         CPU threads (default 0: one per core; MODEL only)\n"
     "  --providers LIST    providers in preference order, e.g. cuda,cpu (MODEL only;\n"
     "                      default: every usable one, cuda first).  One this kiln\n"
     "                      or machine lacks is skipped with a warning, as ONNX\n"
     "                      Runtime does; cpu runs what the others cannot\n"
     "  --strict-providers  fail instead: on a listed provider that cannot run here,\n"
     "                      or a node that would fall back to a later one\n"
     "  --cache DIR         engine cache folder: load the cached engine, or build and\n"
     "                      store it (MODEL only)\n"
     "  --profile N         optimization profile of the engine to run (ENGINE only)\n"
     "  --json FILE         write a JSON report to FILE ('-': stdout, instead of text)\n"
     "  --help              show this help\n"
     "\n"
     "examples:\n"
     "  kiln run resnet50.onnx --input cat.jpg --topk 5 --labels imagenet_classes.txt\n"
     "  kiln run model.onnx --input input_ids=ids.npy --input attention_mask=mask.npy --output out/\n"
     "\n"
     "exit status: 0 ok, 1 a file or the model could not be used, 2 usage error\n", false, NULL},
    {"bench", kc_cmd_bench, "time a model: latency percentiles, throughput, GFLOP/s (like trtexec)",
     "usage: kiln bench MODEL|ENGINE [--batch N] [--shapes SPEC] [--threads N] [--warmup MS]\n"
     "                  [--duration S | --iterations N] [--providers LIST] [--cache DIR]\n"
     "                  [--json FILE]\n"
     "       kiln bench --peak [--threads N] [--json]\n"
     "\n"
     "Time MODEL on the CPU with seeded random inputs (or --input files): model\n"
     "load time, session creation time, throughput (inferences/s and samples/s)\n"
     "and latency min, max, mean, median, percentile(90%), percentile(95%),\n"
     "percentile(99%), with the coefficient of variation (a warning above 10%:\n"
     "the machine looks unstable) and the peak resident memory.  Prints what was\n"
     "measured: kiln version, provider, threads and CPU model.  A progress line is\n"
     "shown on a terminal only.\n"
     "\n"
     "Compute: the MACs of the model at the inputs' shapes (as 'kiln info' counts\n"
     "them), the GFLOP/s achieved at the median latency (FLOPs = 2 x MACs), and,\n"
     "on the CPU, its fraction of the FP32 FMA peak that kiln measures for the ISA\n"
     "level in use and the thread count used (kiln sysinfo).  --peak prints\n"
     "'kiln sysinfo' (the peak per ISA level, 1 thread and all) without a model.\n"
     "\n"
     "With a model, the session builds the engine in memory (its creation time\n"
     "is the build time) or loads it from the engine cache (--cache DIR).  With\n"
     "an engine file, bench reports the time of engine load + context creation\n"
     "(median over 7 loads) and runs the engine as it was built.  A GPU engine\n"
     "(cuda layers) also gets trtexec's split from CUDA events: host-to-device\n"
     "copies, GPU compute and device-to-host copies, and GPU samples/s.\n"
     "\n"
     "flags:\n"
     "  --batch N[,N...]   size of the dynamic first axis of the inputs (default 1); a\n"
     "                     list (1,4,8,16) runs one report per size, in order\n"
     "  --shapes SPEC      shapes of inputs with dynamic axes: NAME:1x3x224x224,NAME2:1x128\n"
     "  --input FILE       use this input instead of random values (as in 'kiln run')\n"
     "  --seed N           seed of the random inputs (default 0)\n"
     "  --threads N        CPU threads (default 0: one per core; MODEL only)\n"
     "  --providers LIST   providers in preference order, e.g. cuda,cpu (MODEL only;\n"
     "                     one this kiln or machine lacks is skipped with a warning)\n"
     "  --strict-providers fail on a listed provider that cannot run here or a node\n"
     "                     that would fall back to a later one (MODEL only)\n"
     "  --cache DIR        engine cache folder (MODEL only)\n"
     "  --profile N        optimization profile of the engine to run, at its opt shapes\n"
     "                     unless --batch/--shapes say otherwise (ENGINE only)\n"
     "  --warmup MS        warm up for MS milliseconds first (default 200)\n"
     "  --duration S       measure for at least S seconds (default 3)\n"
     "  --iterations N     measure N runs (with --duration: at least N runs)\n"
     "  --json FILE        write a JSON report, every latency included ('-': stdout)\n"
     "  --peak             print the measured FP32 FMA peak per ISA level (kiln sysinfo)\n"
     "                     instead of timing a model\n"
     "  --noDataTransfers  GPU engines: time the compute alone, on the inputs already\n"
     "                     on the device (as trtexec --noDataTransfers)\n"
     "  --streams N        ENGINE only: N execution contexts, each timed on its own\n"
     "                     thread (a GPU engine: each on its own CUDA stream); the\n"
     "                     throughput is every stream's runs (as trtexec --streams)\n"
     "  --help             show this help\n"
     "\n"
     "exit status: 0 ok, 1 the model could not be loaded or run, 2 usage error\n", false, NULL},
    {"compare", kc_cmd_compare, "latency and error of providers/precisions against FP32 CPU",
     "usage: kiln compare MODEL [--providers cpu[,cuda]] [--precisions fp32[,fp16,bf16,int8]]\n"
     "                    [--engine FILE.kiln] [--input FILE ...] [--iterations N] [--json FILE]\n"
     "       kiln compare ENGINE --model MODEL [FLAGS]\n"
     "\n"
     "Run MODEL with every provider and precision given and print one table:\n"
     "median latency and error against the FP32 CPU reference (max absolute\n"
     "error, relative L2 error, and top-1 agreement for classifier outputs of\n"
     "shape [N, C]).  Combinations kiln cannot run yet are listed as unavailable.\n"
     "Inputs are seeded random values unless given with --input.  An engine file\n"
     "(--engine, or as the positional argument with --model) adds a row of its\n"
     "own, compared against the same reference.\n"
     "\n"
     "flags:\n"
     "  --engine FILE       also time an engine file and measure its error\n"
     "  --model MODEL       the model of the engine given as the positional argument\n"
     "  --providers LIST    comma-separated providers (default cpu; known: cpu, cuda)\n"
     "  --precisions LIST   comma-separated precisions (default fp32; known: fp32, fp16,\n"
     "                      bf16, int8)\n"
     "  --input FILE        an input file or image (as in 'kiln run')\n"
     "  --shapes SPEC       shapes of inputs with dynamic axes: NAME:1x3x224x224,...\n"
     "  --batch N           size of the dynamic first axis of random inputs (default 1)\n"
     "  --seed N            seed of the random inputs (default 0)\n"
     "  --iterations N      timed runs per row (default 10)\n"
     "  --warmup MS         warm-up per row in milliseconds (default 200)\n"
     "  --threads N         CPU threads (default 0: one per core)\n"
     "  --json FILE         write the table as JSON ('-': stdout)\n"
     "  --help              show this help\n"
     "\n"
     "exit status: 0 ok, 1 the model could not be loaded or run, 2 usage error\n", false, NULL},
    {"sysinfo", kc_cmd_sysinfo, "this machine: CPU, ISA levels, measured FP32 FMA peak per level",
     "usage: kiln sysinfo [--threads N] [--json]\n"
     "\n"
     "Describe this machine as kiln sees it: the CPU model (/proc/cpuinfo), the\n"
     "cpuid vendor and brand, cores online, the x86 features detected, the ISA\n"
     "levels (ref, avx2, avx512) the CPU supports and the one kiln's kernels use\n"
     "(the highest, lowered by KILN_ISA=ref|avx2|avx512), and the FP32 FMA peak\n"
     "kiln measures per level with a short loop of independent FMAs (about 30 ms\n"
     "per figure), on 1 thread and on all threads at once.  'kiln bench' reports\n"
     "a model's GFLOP/s as a fraction of this peak; 'kiln bench --peak' prints\n"
     "this report.\n"
     "\n"
     "flags:\n"
     "  --threads N   threads of the all-threads column (default 0: one per core)\n"
     "  --json        write machine-readable JSON to stdout\n"
     "  --help        show this help\n"
     "\n"
     "exit status: 0 ok, 1 the peak could not be measured, 2 usage error\n", false, NULL},
    {"build", kc_cmd_build, "optimize a model into an engine file (TensorRT's builder)", NULL, false, kc_build_help},
    {"profile", kc_cmd_profile, "per-layer times of a model or engine, slowest first", NULL, false, kc_profile_help},
    {"graph", kc_cmd_graph, "the graph before or after optimization as Graphviz DOT", NULL, false, kc_graph_help},
    {"trtexec", kc_cmd_trtexec, "trtexec's command lines (--onnx, --saveEngine, --loadEngine, ...) and report", NULL,
     false, kc_trtexec_help},
    {"preprocess", kc_cmd_preprocess, "write the ImageNet preprocessing of an image as .npy",
     "usage: kiln preprocess IMAGE --output FILE.npy [--resize N] [--crop N]\n"
     "\n"
     "Write the 1x3xCROPxCROP float32 tensor that 'kiln run' feeds for IMAGE.\n", true, NULL},
    {"help", NULL, "show help for a subcommand",
     "usage: kiln help [SUBCOMMAND]\n"
     "\n"
     "Show the general help, or the help of SUBCOMMAND.\n", false, NULL},
};

/* The command named `name`, or NULL. */
static const kc_command *kc_find(const char *name) {
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++)
        if (strcmp(kc_commands[i].name, name) == 0) return &kc_commands[i];
    return NULL;
}

/* General usage text. */
static void kc_usage(FILE *f) {
    fprintf(f, "kiln %s — inference optimizer and runtime for ONNX models\n\n", kiln_version());
    fprintf(f, "usage: kiln SUBCOMMAND MODEL [FLAGS]\n       kiln --version | --help\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++)
        if (!kc_commands[i].hidden) fprintf(f, "  %-8s %s\n", kc_commands[i].name, kc_commands[i].summary);
    fprintf(f, "\nRun 'kiln help SUBCOMMAND' for the flags of a subcommand.\n");
    fprintf(f, "KILN_LOG=warning|info|debug prints the library's log at that level on stderr\n"
               "(debug: the time of each step of engine load and context creation).\n");
}

static void kc_log_stderr(kiln_log_level level, const char *message, void *user) {
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    int i = (int)level - (int)KILN_LOG_ERROR;
    fprintf(stderr, "kiln [%s] %s\n", i >= 0 && i < 4 ? names[i] : "log", message);
}

bool kc_help(FILE *f, const char *name) {
    const kc_command *c = kc_find(name);
    if (!c) return false;
    if (c->help_fn) c->help_fn(f);
    else fputs(c->help, f);
    return true;
}

/* Error for an unknown subcommand, with a suggestion when one is close. */
static int kc_unknown_command(const char *context, const char *name) {
    const char *names[sizeof kc_commands / sizeof kc_commands[0]];
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++) names[i] = kc_commands[i].name;
    const char *hint = kc_suggest(name, names, sizeof names / sizeof names[0]);
    if (hint)
        return kc_fail(KC_EXIT_USAGE, context, "unknown subcommand '%s' (did you mean '%s'?)", name, hint);
    return kc_fail(KC_EXIT_USAGE, context, "unknown subcommand '%s' (try 'kiln --help')", name);
}

/* kiln help [SUBCOMMAND] */
static int kc_cmd_help(int argc, char **argv) {
    if (argc > 2) return kc_fail(KC_EXIT_USAGE, "help", "unexpected argument '%s'", argv[2]);
    if (argc < 2) {
        kc_usage(stdout);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
        return kc_fail(KC_EXIT_USAGE, "help", "unknown flag '%s'", argv[1]);
    if (argv[1][0] == '-') return kc_help(stdout, "help") ? kc_finish_stdout(KC_EXIT_OK) : 1;
    if (!kc_help(stdout, argv[1])) return kc_unknown_command("help", argv[1]);
    return kc_finish_stdout(KC_EXIT_OK);
}

int main(int argc, char **argv) {
    const char *lv = getenv("KILN_LOG");
    if (lv && *lv) {
        kiln_log_level l = !strcmp(lv, "debug") ? KILN_LOG_DEBUG : !strcmp(lv, "info") ? KILN_LOG_INFO
                                                                                    : KILN_LOG_WARNING;
        kiln_set_log_callback(kc_log_stderr, NULL, l);
    }
    if (argc < 2) {
        return kc_fail(KC_EXIT_USAGE, NULL, "missing subcommand (usage: kiln SUBCOMMAND MODEL; try 'kiln --help')");
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "-V") == 0) {
        if (argc > 2) return kc_fail(KC_EXIT_USAGE, NULL, "unexpected argument '%s' after --version", argv[2]);
        printf("kiln %s\n", kiln_version());
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        kc_usage(stdout);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (sub[0] == '-') {
        static const char *const globals[] = {"--help", "--version"};
        const char *hint = kc_suggest(sub, globals, 2);
        if (hint) return kc_fail(KC_EXIT_USAGE, NULL, "unknown flag '%s' (did you mean '%s'?)", sub, hint);
        return kc_fail(KC_EXIT_USAGE, NULL, "unknown flag '%s' (flags go after the subcommand; try 'kiln --help')",
                       sub);
    }
    if (strcmp(sub, "help") == 0) return kc_cmd_help(argc - 1, argv + 1);
    const kc_command *c = kc_find(sub);
    size_t len = strlen(sub);
    if (!c && len > 5 && strcmp(sub + len - 5, ".onnx") == 0)
        return kc_fail(KC_EXIT_USAGE, NULL, "'%s' is not a subcommand; to describe a model run 'kiln info %s'",
                       sub, sub);
    if (!c || !c->run) return kc_unknown_command(NULL, sub);
    return c->run(argc - 1, argv + 1);
}
