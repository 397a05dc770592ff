/* cli.h - the presso command: subcommands and their shared argument parsing.
 *
 * Each subcommand is one file (info.c, eval.c, ...) exporting cmd_<name>(argc, argv)
 * that returns the process exit status: 0 ok, 1 runtime failure, 2 bad input or
 * usage. Options are GNU-style long options: "--name value" or "--name=value";
 * an option whose name is one letter is a short option, "-o value"; a command
 * with --output and no -o of its own takes -o for it. A string option given
 * twice keeps its last value for cli_parse; cli_values lists them all, for
 * the options that may repeat ("--study a --study b").
 */
#ifndef PRESSO_CLI_H
#define PRESSO_CLI_H

#include <stdbool.h>

#include "base/status.h"

enum cli_kind { CLI_FLAG, CLI_STRING };

struct cli_opt {
	const char *name;     /* without the leading "--" */
	enum cli_kind kind;
	const char *metavar;  /* for --help, CLI_STRING only */
	const char *help;
	bool *flag;           /* CLI_FLAG: set to true when present */
	const char **value;   /* CLI_STRING: points into argv */
};

struct cli_cmd {
	const char *name;
	const char *summary;
	const char *usage;    /* "--model FILE [--json]" */
	const struct cli_opt *opts;
	int n_opts;
};

/* Parses argv[1..] against cmd's options. Prints --help and returns 0 through
 * *exit_now when asked; on a bad option prints the problem and returns 2 there.
 * Returns true when the command should go on. */
bool cli_parse(const struct cli_cmd *cmd, int argc, char **argv, int *exit_now);

/* Prints "presso CMD: <message>" for a failed status to stderr and returns the
 * exit code for it. */
int cli_fail(const char *cmd, enum presso_status s);

/* After a successful cli_parse: every value given for the string option
 * `name`, in order, into out (room for max). Returns their number, or -1
 * after printing a usage error when there are more than max. */
int cli_values(const struct cli_cmd *cmd, int argc, char **argv, const char *name,
	       const char **out, int max);

/* Requires a string option; prints a usage error if it is missing. */
bool cli_require(const struct cli_cmd *cmd, const char *name, const char *value);

int cmd_info(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_studies(int argc, char **argv);
int cmd_pareto(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_latency(int argc, char **argv);
int cmd_sensitivity(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_finetune(int argc, char **argv);

#endif
