/* test_report.c - `presso report` and `presso pareto --plot` as a user runs
 * them, on a database made through the store API.
 *
 * The report's pictures are checked as XML with libxml2 (a test-only
 * dependency): every <svg> block of the page and the --svg file must be
 * well-formed, the scatter must hold one point per complete trial, and its
 * front points must be the trials `presso pareto` lists. The page must be
 * self-contained and escape what comes from the database.
 *
 * The study "lenet" (FP32: 92 %, 100000 bytes, 10 classes; constraint
 * max_size_kb 35; layers named as models/lenet.onnx's, which it points to
 * with its real SHA-256) holds:
 *   1: W8A8 everywhere          91.0 %, 90000 B  front (INT8)
 *   2: W4A8, first/last at 8    89.5 %, 30000 B  front (INT4), best under 35 KB
 *   3: mixed                    88.0 %, 40000 B  dominated
 *   4: mixed                    85.0 %, 20000 B  front
 *   5: failed                   6: running
 *   7: mixed                    89.2 %, 25000 B  front
 * "lenet-b" (strategy evolution, no constraints, a model path that is not
 * there) holds two trials, "one" a single trial, "empty" none, and the study
 * named ESCAPED has markup and quotes in its name, a layer name and its config.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "db/store.h"
#include "tests/fixtures.h"

#define ESCAPED "x<y> & \"z\""
#define N_COMPLETE 5

static char *tmp;
static char db[4200];

static const char *const lenet_layers[5] = {"/conv1/Conv", "/conv2/Conv", "/fc1/Gemm",
					    "/fc2/Gemm", "/fc3/Gemm"};

/* A trial with the given per-layer bits (act 8, no pruning, full rank). */
static void add(struct store *st, int64_t study, const char *const *names, const int *bits,
		int n_layers, double acc, int64_t size)
{
	struct layer_choice l[8];
	char p[1024];
	size_t u = (size_t)snprintf(p, sizeof p, "{\"default\": {\"bits\": 8}, \"layers\": {");
	for (int i = 0; i < n_layers; i++) {
		l[i] = (struct layer_choice){names[i], bits[i], 8, false, 0.0, 0, 1.0};
		u += (size_t)snprintf(p + u, sizeof p - u, "%s\"L%d\": {\"bits\": %d}", i ? ", " : "",
				      i, bits[i]);
	}
	snprintf(p + u, sizeof p - u, "}}");
	int64_t n;
	cr_assert_eq(store_begin_trial(st, study, p, NULL, "w0", &n), PRESSO_OK, "%s", status_msg());
	struct trial_metrics m = {acc, NAN, size, (double)size * 64, NAN, 6.0, 0.0, 1.0, 0, false, 0, 0};
	cr_assert_eq(store_complete_trial(st, study, n, &m, l, n_layers, NULL, 0), PRESSO_OK, "%s",
		     status_msg());
}

static int64_t study(struct store *st, const char *name, const char *config, const char *model,
		     const char *sha)
{
	struct study_spec sp = {
		.name = name,
		.config_json = config,
		.model_path = model,
		.model_sha256 = sha,
		.dataset = "fashion-mnist",
		.seed = 1,
		.baseline = {92.0, NAN, 100000, 6.4e6, NAN, 10},
	};
	int64_t id;
	bool resumed;
	cr_assert_eq(store_create_or_resume_study(st, &sp, false, &id, &resumed, NULL), PRESSO_OK,
		     "%s", status_msg());
	return id;
}

static void setup(void)
{
	tmp = fx_tmpdir();
	cr_assert(tmp);
	snprintf(db, sizeof db, "%s/runs.db", tmp);
	char sha[SHA256_HEX_BYTES];
	cr_assert_eq(sha256_file(fx_src("models/lenet.onnx"), sha), PRESSO_OK);
	struct store *st;
	cr_assert_eq(store_open(db, STORE_CREATE, &st), PRESSO_OK, "%s", status_msg());
	int64_t id = study(st, "lenet",
			   "{\"name\": \"lenet\", \"constraints\": {\"max_size_kb\": 35}, "
			   "\"search\": {\"strategy\": \"random\"}}",
			   fx_src("models/lenet.onnx"), sha);
	static const int w8[5] = {8, 8, 8, 8, 8}, w4[5] = {8, 4, 4, 4, 8}, mix[5] = {8, 3, 2, 4, 8};
	add(st, id, lenet_layers, w8, 5, 91.0, 90000);
	add(st, id, lenet_layers, w4, 5, 89.5, 30000);
	add(st, id, lenet_layers, mix, 5, 88.0, 40000);
	add(st, id, lenet_layers, mix, 5, 85.0, 20000);
	int64_t n;
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": {\"bits\": 1}}", NULL, "w1", &n),
		     PRESSO_OK);
	cr_assert_eq(store_fail_trial(st, id, n, "calibration <diverged> & stopped"), PRESSO_OK);
	cr_assert_eq(store_begin_trial(st, id, "{\"default\": {\"bits\": 2}}", NULL, "w2", &n),
		     PRESSO_OK);
	add(st, id, lenet_layers, mix, 5, 89.2, 25000);

	id = study(st, "lenet-b", "{\"name\": \"lenet\", \"search\": {\"strategy\": \"evolution\"}}",
		   "no/such/model.onnx", sha);
	add(st, id, lenet_layers, w4, 5, 90.0, 30000);
	add(st, id, lenet_layers, mix, 5, 91.5, 28000);

	id = study(st, "one", "{\"name\": \"one\"}", "no/such/model.onnx", sha);
	add(st, id, lenet_layers, mix, 5, 80.0, 30000);

	study(st, "empty", "{\"name\": \"empty\"}", "no/such/model.onnx", sha);

	id = study(st, ESCAPED,
		   "{\"name\": \"</pre><script>alert('x')</script>\", \"note\": \"a & b\"}",
		   "it's <here>.onnx", sha);
	const char *odd[3] = {"<conv> & 'one'", "bad \xff utf-8", "\"fc\""};
	static const int b3[3] = {8, 4, 8};
	add(st, id, odd, b3, 3, 90.0, 50000);
	store_close(st);
}

static void teardown(void)
{
	if (!fx_rmtree(tmp))
		fprintf(stderr, "could not remove %s\n", tmp);
	free(tmp);
}

TestSuite(report, .init = setup, .fini = teardown);

/* Runs presso with printf-style arguments; returns the exit status. */
__attribute__((format(printf, 3, 4))) static int run(char **out, char **err, const char *fmt, ...)
{
	char args[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	int rc = fx_presso(args, out, err);
	cr_assert_geq(rc, 0, "could not run presso %s", args);
	cr_assert_not_null(*out);
	cr_assert_not_null(*err);
	return rc;
}

static void free2(char *a, char *b)
{
	free(a);
	free(b);
}

/* Writes the report of the studies (a shell fragment of --study options) and
 * returns the page. */
static char *report(const char *studies)
{
	char *out, *err;
	const char *html = fx_join(tmp, "report.html");
	unlink(html);
	cr_assert_eq(run(&out, &err, "report --db '%s' %s -o '%s'", db, studies, html), 0, "%s",
		     err);
	free2(out, err);
	char *page = fx_read(html, NULL);
	cr_assert_not_null(page, "no %s", html);
	return page;
}

/* The n-th <svg ...</svg> block of a page (malloc'd), or NULL. */
static char *svg_block(const char *page, int n)
{
	const char *p = page;
	for (int i = 0;; i++) {
		const char *a = strstr(p, "<svg ");
		if (!a)
			return NULL;
		const char *b = strstr(a, "</svg>");
		cr_assert_not_null(b, "an <svg> without its end");
		b += strlen("</svg>");
		if (i == n)
			return strndup(a, (size_t)(b - a));
		p = b;
	}
}

/* The <svg> block whose id is `id` (malloc'd), or NULL. */
static char *svg_by_id(const char *page, const char *id)
{
	char key[96];
	snprintf(key, sizeof key, "id=\"%s\"", id);
	for (int i = 0;; i++) {
		char *s = svg_block(page, i);
		if (!s)
			return NULL;
		char *end = strchr(s, '>');
		if (end && strstr(s, key) && strstr(s, key) < end)
			return s;
		free(s);
	}
}

static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Parses XML text strictly (no network, no entities from outside); NULL
 * when it is not well-formed. */
static xmlDocPtr parse(const char *text)
{
	xmlSetGenericErrorFunc(NULL, quiet);
	return xmlReadMemory(text, (int)strlen(text), "report.svg", "UTF-8",
			     XML_PARSE_NONET | XML_PARSE_NOWARNING);
}

/* The values of `attr` of the elements an XPath expression selects (the SVG
 * namespace is bound to "s"); returns their number. */
static int select_attr(xmlDocPtr doc, const char *xpath, const char *attr, long *values, int max)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	cr_assert_not_null(ctx);
	xmlXPathRegisterNs(ctx, BAD_CAST "s", BAD_CAST "http://www.w3.org/2000/svg");
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
	cr_assert_not_null(r, "bad xpath %s", xpath);
	int n = r->nodesetval ? r->nodesetval->nodeNr : 0;
	for (int i = 0; i < n && i < max && attr; i++) {
		xmlChar *v = xmlGetProp(r->nodesetval->nodeTab[i], BAD_CAST attr);
		values[i] = v ? strtol((const char *)v, NULL, 10) : -1;
		xmlFree(v);
	}
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	return n;
}

#define HAS_CLASS(c) "contains(concat(' ', normalize-space(@class), ' '), ' " c " ')"
#define TRIAL_POINTS "//s:circle[" HAS_CLASS("trial") "]"
#define FRONT_POINTS "//s:circle[" HAS_CLASS("trial") " and " HAS_CLASS("front") "]"

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* The trial numbers `presso pareto --format csv` lists, sorted. */
static int pareto_trials(const char *name, long *t, int max)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study '%s' --format csv", db, name), 0,
		     "%s", err);
	int n = 0;
	const char *line = strchr(out, '\n');
	while (line && line[1] && n < max) {
		t[n++] = strtol(line + 1, NULL, 10);
		line = strchr(line + 1, '\n');
	}
	free2(out, err);
	qsort(t, (size_t)n, sizeof *t, cmp_long);
	return n;
}

/* --- the page ------------------------------------------------------------- */

Test(report, page_is_self_contained_html)
{
	char *page = report("--study lenet");
	cr_assert(strncmp(page, "<!DOCTYPE html>", 15) == 0);
	cr_assert(strstr(page, "</html>"));
	cr_assert(strstr(page, "<style>"), "the CSS is inline");
	cr_assert_null(strstr(page, "<script"), "no script");
	cr_assert_null(strstr(page, "<link"), "nothing linked");
	cr_assert_null(strstr(page, "<img"), "no image fetched");
	cr_assert_null(strstr(page, "https:"));
	/* the only URL is the SVG namespace */
	for (const char *p = strstr(page, "http:"); p; p = strstr(p + 1, "http:"))
		cr_assert(strncmp(p, "http://www.w3.org/2000/svg\"", 27) == 0, "%.60s", p);
	/* the sections */
	cr_assert(strstr(page, "id=\"progress-hv\""));
	cr_assert(strstr(page, "id=\"scatter-0\""));
	cr_assert(strstr(page, "id=\"policy-0\""));
	cr_assert(strstr(page, "<table class=\"front\">"));
	cr_assert(strstr(page, "class=\"config\""));
	cr_assert(strstr(page, "class=\"timings\""));
	/* the failed trial's reason, escaped */
	cr_assert(strstr(page, "calibration &lt;diverged&gt; &amp; stopped"));
	free(page);
}

Test(report, every_svg_is_well_formed_xml)
{
	char *page = report("--study lenet --study lenet-b --study one --study empty");
	int n = 0;
	for (char *s; (s = svg_block(page, n)); n++) {
		xmlDocPtr doc = parse(s);
		cr_assert_not_null(doc, "svg block %d is not well-formed XML:\n%.400s", n, s);
		xmlNodePtr root = xmlDocGetRootElement(doc);
		cr_assert_str_eq((const char *)root->name, "svg");
		cr_assert_not_null(root->ns);
		cr_assert_str_eq((const char *)root->ns->href, "http://www.w3.org/2000/svg");
		xmlFreeDoc(doc);
		free(s);
	}
	/* progress (hypervolume, best), then per study a scatter and a policy
	 * (the empty one has neither a policy nor a best line) */
	cr_assert_geq(n, 2 + 4 + 3, "only %d svg blocks", n);
	free(page);
}

Test(report, scatter_has_one_point_per_complete_trial_and_the_front_of_pareto)
{
	char *page = report("--study lenet");
	char *s = svg_by_id(page, "scatter-0");
	cr_assert_not_null(s);
	xmlDocPtr doc = parse(s);
	cr_assert_not_null(doc);
	long pts[64], front[64], expect[64];
	int n = select_attr(doc, TRIAL_POINTS, "data-trial", pts, 64);
	cr_assert_eq(n, N_COMPLETE, "%d points for %d complete trials", n, N_COMPLETE);
	qsort(pts, (size_t)n, sizeof *pts, cmp_long);
	static const long complete[N_COMPLETE] = {1, 2, 3, 4, 7};
	for (int i = 0; i < n; i++)
		cr_assert_eq(pts[i], complete[i], "point %d is trial %ld", i, pts[i]);
	int nf = select_attr(doc, FRONT_POINTS, "data-trial", front, 64);
	int ne = pareto_trials("lenet", expect, 64);
	cr_assert_eq(ne, 4);
	cr_assert_eq(nf, ne, "%d front points, pareto lists %d", nf, ne);
	qsort(front, (size_t)nf, sizeof *front, cmp_long);
	for (int i = 0; i < nf; i++)
		cr_assert_eq(front[i], expect[i]);
	/* FP32, INT8 (trial 1), INT4 (trial 2) and the best under 35 KB (trial 2) */
	cr_assert_eq(select_attr(doc, "//s:path[@class='fp32']", NULL, NULL, 0), 1);
	long t;
	cr_assert_eq(select_attr(doc, "//s:rect[@class='uniform int8']", "data-trial", &t, 1), 1);
	cr_assert_eq(t, 1);
	cr_assert_eq(select_attr(doc, "//s:rect[@class='uniform int4']", "data-trial", &t, 1), 1);
	cr_assert_eq(t, 2);
	cr_assert_eq(select_attr(doc, "//s:circle[@class='best']", "data-trial", &t, 1), 1);
	cr_assert_eq(t, 2, "the most accurate trial of at most 35 KB");
	/* the size bound is drawn */
	cr_assert_geq(select_attr(doc, "//s:rect[@class='constraint']", NULL, NULL, 0), 1);
	cr_assert(strstr(s, "max size 35 KB"));
	xmlFreeDoc(doc);
	free(s);
	free(page);
}

Test(report, hypervolume_ends_where_pareto_says)
{
	char *page = report("--study lenet");
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --format json", db), 0, "%s",
		     err);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j);
	double ratio = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "hypervolume"), "ratio")->valuedouble;
	char want[64];
	snprintf(want, sizeof want, "hypervolume %.4f of the box", ratio);
	cr_assert(strstr(page, want), "the page does not say '%s'", want);
	/* and the progress chart's last value */
	char *s = svg_by_id(page, "progress-hv");
	cr_assert_not_null(s);
	snprintf(want, sizeof want, ">%.4f</text>", ratio);
	cr_assert(strstr(s, want), "the chart does not end at %s", want);
	cJSON_Delete(j);
	free2(out, err);
	free(s);
	free(page);
}

Test(report, chosen_policy_as_a_heat_map_with_params_and_macs)
{
	char *page = report("--study lenet");
	char *s = svg_by_id(page, "policy-0");
	cr_assert_not_null(s);
	cr_assert(strstr(page, "The chosen policy: trial 2"), "the best under the constraints");
	xmlDocPtr doc = parse(s);
	cr_assert_not_null(doc);
	long idx[16];
	cr_assert_eq(select_attr(doc, "//s:g[@class='layer']", "data-layer", idx, 16), 5);
	/* 5 knobs per layer */
	cr_assert_eq(select_attr(doc, "//s:rect[@class='cell']", NULL, NULL, 0), 5 * 5);
	/* the model is there with the study's SHA-256: params and MACs of lenet */
	cr_assert(strstr(s, ">params<") && strstr(s, ">MACs<"), "%.300s", s);
	cr_assert(strstr(s, ">48.1k<"), "fc1's 48,120 parameters");
	cr_assert(strstr(s, ">240k<"), "conv2's 240,000 MACs");
	xmlFreeDoc(doc);
	free(s);
	free(page);
}

Test(report, missing_model_is_said_and_the_map_drawn_without_it)
{
	char *page = report("--study lenet-b");
	cr_assert(strstr(page, "no/such/model.onnx&#39; is not there"), "no note about the model");
	char *s = svg_by_id(page, "policy-0");
	cr_assert_not_null(s);
	cr_assert_null(strstr(s, ">params<"));
	cr_assert(strstr(page, "no trial of this study is a uniform INT8 policy"),
		  "lenet-b has an INT4 trial but no INT8 one");
	free(s);
	free(page);
}

Test(report, repeated_study_compares_on_the_progress_charts)
{
	char *page = report("--study lenet --study lenet-b");
	char *s = svg_by_id(page, "progress-hv");
	cr_assert_not_null(s);
	xmlDocPtr doc = parse(s);
	cr_assert_not_null(doc);
	long which[8];
	int n = select_attr(doc, "//s:polyline[@class='progress']", "data-study", which, 8);
	cr_assert_eq(n, 2, "%d lines", n);
	cr_assert(which[0] != which[1]);
	cr_assert(strstr(s, ">lenet (random)<") && strstr(s, ">lenet-b (evolution)<"), "legend");
	xmlFreeDoc(doc);
	free(s);
	/* two study sections; the best charts split by rule (35 KB bound vs none) */
	cr_assert(strstr(page, "id=\"study-0\"") && strstr(page, "id=\"study-1\""));
	cr_assert(strstr(page, "id=\"progress-best-0\"") && strstr(page, "id=\"progress-best-1\""));
	free(page);
}

Test(report, escapes_what_comes_from_the_database)
{
	char *page = report("--study 'x<y> & \"z\"'");
	cr_assert_null(strstr(page, "<script"), "markup from a config went through");
	cr_assert_null(strstr(page, ESCAPED), "a raw study name");
	cr_assert(strstr(page, "x&lt;y&gt; &amp; &quot;z&quot;"));
	cr_assert(strstr(page, "&lt;/pre&gt;&lt;script&gt;alert(&#39;x&#39;)"));
	cr_assert(strstr(page, "bad \xef\xbf\xbd utf-8"), "an invalid byte becomes U+FFFD");
	for (int i = 0;; i++) {
		char *s = svg_block(page, i);
		if (!s)
			break;
		xmlDocPtr doc = parse(s);
		cr_assert_not_null(doc, "svg %d:\n%.300s", i, s);
		xmlFreeDoc(doc);
		free(s);
	}
	free(page);
}

Test(report, small_studies_do_not_break_it)
{
	char *page = report("--study one --study empty");
	char *s = svg_by_id(page, "scatter-1");
	cr_assert_not_null(s);
	xmlDocPtr doc = parse(s);
	cr_assert_not_null(doc);
	cr_assert_eq(select_attr(doc, TRIAL_POINTS, NULL, NULL, 0), 0);
	xmlFreeDoc(doc);
	free(s);
	s = svg_by_id(page, "scatter-0");
	doc = parse(s);
	cr_assert_not_null(doc);
	cr_assert_eq(select_attr(doc, FRONT_POINTS, NULL, NULL, 0), 1);
	xmlFreeDoc(doc);
	free(s);
	cr_assert(strstr(page, "the front is empty"));
	free(page);
}

/* --- --svg ------------------------------------------------------------------ */

Test(report, svg_option_writes_the_scatter_alone)
{
	char *out, *err;
	const char *svg = fx_join(tmp, "front.svg");
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet --svg '%s'", db, svg), 0, "%s",
		     err);
	free2(out, err);
	cr_assert(access(fx_join(tmp, "report.html"), F_OK) != 0, "no page was asked for");
	xmlSetGenericErrorFunc(NULL, quiet);
	xmlDocPtr doc = xmlReadFile(svg, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc, "%s is not well-formed", svg);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->name, "svg");
	cr_assert_str_eq((const char *)root->ns->href, "http://www.w3.org/2000/svg");
	long t[16], expect[16];
	cr_assert_eq(select_attr(doc, TRIAL_POINTS, NULL, NULL, 0), N_COMPLETE);
	int nf = select_attr(doc, FRONT_POINTS, "data-trial", t, 16);
	cr_assert_eq(nf, pareto_trials("lenet", expect, 16));
	xmlFreeDoc(doc);
}

/* --- errors ----------------------------------------------------------------- */

Test(report, errors_exit_2_and_leave_no_file)
{
	char *out, *err;
	const char *html = fx_join(tmp, "r.html"), *svg = fx_join(tmp, "r.svg");
	/* an unknown study: the known ones are listed */
	cr_assert_eq(run(&out, &err, "report --db '%s' --study nope -o '%s'", db, html), 2);
	cr_assert(strstr(err, "nope") && strstr(err, "lenet"), "%s", err);
	cr_assert(access(html, F_OK) != 0);
	free2(out, err);
	/* the second study unknown: nothing written either */
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet --study nope -o '%s' --svg '%s'",
			 db, html, svg),
		     2);
	cr_assert(access(html, F_OK) != 0 && access(svg, F_OK) != 0);
	free2(out, err);
	/* an output folder that is not there */
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet -o '%s/no/dir/r.html'", db, tmp),
		     2);
	cr_assert(strstr(err, "no/dir/r.html"), "%s", err);
	free2(out, err);
	/* the page could go, the SVG could not: neither is written */
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet -o '%s' --svg '%s/no/r.svg'", db,
			 html, tmp),
		     2);
	cr_assert(access(html, F_OK) != 0, "half a report was left");
	free2(out, err);
	/* no output at all, no study, no database, a study twice */
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet", db), 2);
	cr_assert(strstr(err, "-o"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "report --db '%s' -o '%s'", db, html), 2);
	cr_assert(strstr(err, "--study"), "%s", err);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "report --db '%s/none.db' --study lenet -o '%s'", tmp, html), 2);
	cr_assert(strstr(err, "none.db"), "%s", err);
	cr_assert(access(fx_join(tmp, "none.db"), F_OK) != 0, "report never creates a database");
	free2(out, err);
	cr_assert_eq(run(&out, &err, "report --db '%s' --study lenet --study lenet -o '%s'", db, html),
		     2);
	free2(out, err);
	cr_assert(access(html, F_OK) != 0);
	/* --help */
	cr_assert_eq(run(&out, &err, "report --help"), 0);
	cr_assert(strstr(out, "--svg") && strstr(out, "--study"), "%s", out);
	free2(out, err);
}

/* --- pareto --plot ---------------------------------------------------------- */

/* Characters (code points) on a line of UTF-8. */
static int line_width(const char *s, const char *end)
{
	int w = 0;
	for (; s < end; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

Test(report, pareto_plot_draws_the_front)
{
	char *out, *err;
	setenv("COLUMNS", "100", 1);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --plot", db), 0, "%s", err);
	/* braille in U+2800..U+28FF: UTF-8 E2 A0..A3 xx */
	bool braille = false;
	for (const unsigned char *p = (const unsigned char *)out; p[0] && p[1]; p++)
		braille |= p[0] == 0xe2 && p[1] >= 0xa0 && p[1] <= 0xa3;
	cr_assert(braille, "%s", out);
	cr_assert_geq(count(out, "●"), 3, "%s", out); /* 4 front points; two may share a cell */
	/* 16 canvas lines, each 8 label columns + axis + 90 cells (COLUMNS 100) */
	int rows = 0;
	for (const char *line = out; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			break;
		if ((strstr(line, "│") && strstr(line, "│") < end) ||
		    (strstr(line, "┤") && strstr(line, "┤") < end)) {
			cr_assert_eq(line_width(line, end), 8 + 1 + 90, "%.*s", (int)(end - line), line);
			rows++;
		}
		line = end + 1;
	}
	cr_assert_eq(rows, 16, "%s", out);
	cr_assert(strstr(out, "└"), "an x axis");
	cr_assert(strstr(out, "trial  accuracy"), "the table follows:\n%s", out);
	free2(out, err);
}

Test(report, pareto_plot_on_one_point_and_empty_fronts)
{
	char *out, *err;
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study one --plot", db), 0, "%s", err);
	cr_assert_eq(count(out, "●"), 1 + 1, "one point and the legend's:\n%s", out);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study empty --plot", db), 0, "%s", err);
	cr_assert(strstr(out, "no front to plot"), "%s", out);
	free2(out, err);
	cr_assert_eq(run(&out, &err, "pareto --db '%s' --study lenet --plot --format csv", db), 2);
	cr_assert(strstr(err, "--plot"), "%s", err);
	free2(out, err);
}
