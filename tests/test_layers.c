/* test_layers.c - the layer check (scripts/check_layers.sh): the tree passes
 * it, and a copy of a layer with an upward, a sideways or a dangling include
 * is refused with the file, the line and the include named. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixtures.h"

/* Runs the check on root; returns its exit status, *err what it printed on
 * stderr (free it). */
static int check(const char *root, char **err)
{
	char *dir = fx_tmpdir();
	cr_assert_not_null(dir);
	const char *err_path = fx_join(dir, "stderr");
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null 2>'%s'",
		 fx_src("scripts/check_layers.sh"), root, err_path);
	int rc = system(cmd);
	*err = fx_read(err_path, NULL);
	unlink(err_path);
	rmdir(dir);
	free(dir);
	return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A tree with one file per layer used below and the include line given. */
static char *tree_with(const char *file, const char *include_line)
{
	char *root = fx_tmpdir();
	cr_assert_not_null(root);
	const char *dirs[] = {"src", "src/base", "src/model", "src/quant", "db", "search",
			      "evaluators"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		cr_assert_eq(mkdir(fx_join(root, dirs[i]), 0700), 0);
	const char *headers[] = {"src/base/status.h", "src/model/graph.h", "src/quant/quant.h",
				 "db/store.h", "search/driver.h", "evaluators/trial.h"};
	for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
		cr_assert(fx_write(fx_join(root, headers[i]), "", 0));
	const char *ok = "#include \"base/status.h\"\n#include <stdio.h>\n";
	cr_assert(fx_write(fx_join(root, "src/model/graph.c"), ok, strlen(ok)));
	cr_assert(fx_write(fx_join(root, file), include_line, strlen(include_line)));
	return root;
}

static void remove_tree(char *root)
{
	cr_assert(fx_rmtree(root));
	free(root);
}

Test(layers, the_tree_passes)
{
	char *err = NULL;
	int rc = check(fx_src(""), &err);
	cr_assert_eq(rc, 0, "the layer check failed on the tree:\n%s", err ? err : "");
	free(err);
}

Test(layers, a_downward_include_passes)
{
	char *root = tree_with("search/driver.c", "#include \"db/store.h\"\n");
	char *err = NULL;
	cr_assert_eq(check(root, &err), 0, "%s", err ? err : "");
	free(err);
	remove_tree(root);
}

Test(layers, an_upward_include_is_refused)
{
	/* the store reaching into the search: what the layout moved away */
	char *root = tree_with("db/store.c", "#include <stdio.h>\n\n#include \"search/driver.h\"\n");
	char *err = NULL;
	cr_assert_eq(check(root, &err), 1);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "db/store.c:3: includes \"search/driver.h\" from search, which db may "
			      "not use"),
		  "%s", err);
	free(err);
	remove_tree(root);
}

Test(layers, an_upward_include_inside_src_is_refused)
{
	char *root = tree_with("src/base/status.c", "#include \"quant/quant.h\"\n");
	char *err = NULL;
	cr_assert_eq(check(root, &err), 1);
	cr_assert(strstr(err, "src/base/status.c:1: includes \"quant/quant.h\" from src/quant"), "%s",
		  err);
	free(err);
	remove_tree(root);
}

Test(layers, a_sideways_include_is_refused)
{
	/* db and evaluators are peers: neither may include the other */
	char *root = tree_with("db/store.c", "#include \"evaluators/trial.h\"\n");
	char *err = NULL;
	cr_assert_eq(check(root, &err), 1);
	cr_assert(strstr(err, "db/store.c:1: includes \"evaluators/trial.h\" from evaluators"), "%s",
		  err);
	free(err);
	remove_tree(root);
}

Test(layers, a_header_that_is_not_there_is_refused)
{
	char *root = tree_with("src/quant/quant.c", "#include \"graph.h\"\n");
	char *err = NULL;
	cr_assert_eq(check(root, &err), 1);
	cr_assert(strstr(err, "src/quant/quant.c:1: includes \"graph.h\", which is no header"), "%s",
		  err);
	free(err);
	remove_tree(root);
}
