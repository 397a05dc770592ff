/* args.c - long-option parsing and error reporting shared by the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_help(const struct cli_cmd *cmd)
{
	printf("usage: presso %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
	for (int i = 0; i < cmd->n_opts; i++) {
		const struct cli_opt *o = &cmd->opts[i];
		char left[64];
		/* --output also answers to -o (cli_parse) */
		snprintf(left, sizeof left, "%s%s%s%s%s", strcmp(o->name, "output") == 0 ? "-o, " : "",
			 o->name[1] ? "--" : "-", o->name, o->kind == CLI_STRING ? " " : "",
			 o->kind == CLI_STRING ? o->metavar : "");
		printf("  %-24s %s\n", left, o->help);
	}
	printf("  %-24s %s\n", "--help", "show this help");
}

/* Walks argv against cmd's options as cli_parse describes; when `collect` is
 * given, also appends every value of that option to out (room for max,
 * counting on past it in *n). */
static bool walk(const struct cli_cmd *cmd, int argc, char **argv, int *exit_now,
		 const char *collect, const char **out, int max, int *n)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_help(cmd);
			*exit_now = 0;
			return false;
		}
		bool short_opt = arg[0] == '-' && arg[1] && arg[1] != '-' && !arg[2];
		if (strncmp(arg, "--", 2) != 0 && !short_opt) {
			fprintf(stderr, "presso %s: unexpected argument '%s' (see presso %s --help)\n",
				cmd->name, arg, cmd->name);
			*exit_now = 2;
			return false;
		}
		const char *name = arg + (short_opt ? 1 : 2);
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = NULL;
		for (int k = 0; k < cmd->n_opts; k++)
			if (strlen(cmd->opts[k].name) == len && strncmp(cmd->opts[k].name, name, len) == 0 &&
			    (len == 1) == short_opt)
				o = &cmd->opts[k];
		for (int k = 0; !o && short_opt && name[0] == 'o' && k < cmd->n_opts; k++)
			if (strcmp(cmd->opts[k].name, "output") == 0)
				o = &cmd->opts[k]; /* -o FILE: --output FILE */
		if (!o) {
			fprintf(stderr, "presso %s: unknown option '%s%.*s' (see presso %s --help)\n",
				cmd->name, short_opt ? "-" : "--", (int)len, name, cmd->name);
			*exit_now = 2;
			return false;
		}
		if (o->kind == CLI_FLAG) {
			if (eq) {
				fprintf(stderr, "presso %s: option '--%s' takes no value\n", cmd->name,
					o->name);
				*exit_now = 2;
				return false;
			}
			*o->flag = true;
			continue;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			fprintf(stderr, "presso %s: option '--%s' needs a value (%s)\n", cmd->name,
				o->name, o->metavar);
			*exit_now = 2;
			return false;
		}
		*o->value = v;
		if (collect && strcmp(o->name, collect) == 0) {
			if (*n < max)
				out[*n] = v;
			(*n)++;
		}
	}
	return true;
}

bool cli_parse(const struct cli_cmd *cmd, int argc, char **argv, int *exit_now)
{
	return walk(cmd, argc, argv, exit_now, NULL, NULL, 0, NULL);
}

int cli_values(const struct cli_cmd *cmd, int argc, char **argv, const char *name,
	       const char **out, int max)
{
	int n = 0, rc;
	if (!walk(cmd, argc, argv, &rc, name, out, max, &n))
		return -1;
	if (n > max) {
		fprintf(stderr, "presso %s: --%s may be given at most %d times, not %d\n", cmd->name,
			name, max, n);
		return -1;
	}
	return n;
}

bool cli_require(const struct cli_cmd *cmd, const char *name, const char *value)
{
	if (value && *value)
		return true;
	fprintf(stderr, "presso %s: --%s is required (usage: presso %s %s)\n", cmd->name, name,
		cmd->name, cmd->usage);
	return false;
}

int cli_fail(const char *cmd, enum presso_status s)
{
	const char *msg = status_msg();
	fprintf(stderr, "presso %s: %s\n", cmd, *msg ? msg : status_str(s));
	return status_exit_code(s);
}
