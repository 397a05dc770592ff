/* main.c - the presso command: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{"info", cmd_info, "layers of a model: shapes, parameters, MACs"},
	{"eval", cmd_eval, "FP32 accuracy and throughput of a study's model on its dataset"},
	{"studies", cmd_studies, "the studies in a database: trials, best results, front size"},
	{"pareto", cmd_pareto, "a study's Pareto front as a table, CSV or JSON"},
	{"policy", cmd_policy, "a policy template listing every compressible layer of a model"},
	{"export", cmd_export, "one trial's policy as JSON, for compress and eval --policy"},
	{"search", cmd_search, "search per-layer bits for a model: random, bandit, evolution, hybrid"},
	{"compress", cmd_compress, "a deployable compressed model: ONNX in QDQ form, or .presso"},
	{"report", cmd_report, "an HTML report with plots: the front, the search's progress, the policy"},
	{"finetune", cmd_finetune, "fine-tune a policy's compressed model (QAT with distillation)"},
	{"latency", cmd_latency, "the per-layer latency table a search with a latency objective uses"},
	{"sensitivity", cmd_sensitivity, "each layer's accuracy drop at each bit width / prune ratio / rank alone"},
	{"run", cmd_run, "input tensors through a model: outputs as NPY, or checked against expected ones"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: presso COMMAND [options]\n\n"
		   "presso searches, layer by layer, for the bit widths, prune ratios and ranks\n"
		   "that give a trained network the best trade-off of accuracy, size and latency.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n  presso COMMAND --help   options of a command\n"
		   "  presso --version        version\n\n"
		   "exit status: 0 ok, 1 runtime failure, 2 bad input or usage\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("presso %s\n", PRESSO_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "presso: unknown command '%s' (see presso --help)\n", argv[1]);
	return 2;
}
