/* test_policy.c - policy JSON: shorthands, defaults and overrides, canonical
 * output, and every validation error naming its field. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "quant/policy.h"
#include "tests/fixtures.h"

static const struct layer LAYERS[] = {
	{.name = "conv1", .op = OP_CONV, .c_out = 6, .c_in = 1, .kh = 5, .kw = 5, .group = 1},
	{.name = "conv2", .op = OP_CONV, .c_out = 16, .c_in = 6, .kh = 5, .kw = 5, .group = 1},
	{.name = "fc", .op = OP_GEMM, .c_out = 10, .c_in = 84, .kh = 1, .kw = 1, .group = 1},
};
#define N_LAYERS 3

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	cr_assert_eq(policy_parse(text, "p.json", LAYERS, N_LAYERS, &p), PRESSO_OK, "%s", status_msg());
	return p;
}

static void parse_err(const char *text, enum presso_status want, const char *needle)
{
	struct policy *p = (struct policy *)0x1;
	enum presso_status s = policy_parse(text, "p.json", LAYERS, N_LAYERS, &p);
	cr_assert_eq(s, want, "%s: got %s (%s)", text, status_str(s), status_msg());
	cr_assert_null(p);
	cr_assert(strstr(status_msg(), needle), "%s: message '%s' lacks '%s'", text, status_msg(),
		  needle);
}

Test(policy, shorthands)
{
	struct policy *p;
	cr_assert_eq(policy_load("int8", LAYERS, N_LAYERS, &p), PRESSO_OK);
	for (int i = 0; i < N_LAYERS; i++) {
		cr_assert_eq(p->layers[i].bits, 8);
		cr_assert_eq(p->layers[i].act_bits, 8);
	}
	policy_free(p);
	cr_assert_eq(policy_load("int4", LAYERS, N_LAYERS, &p), PRESSO_OK);
	cr_assert_eq(p->layers[0].bits, 8, "first layer stays 8-bit");
	cr_assert_eq(p->layers[1].bits, 4);
	cr_assert_eq(p->layers[2].bits, 8, "last layer stays 8-bit");
	cr_assert_eq(p->layers[1].act_bits, 8);
	policy_free(p);
}

Test(policy, default_and_overrides)
{
	struct policy *p = parse_ok("{\"default\": {\"bits\": 4, \"bias_correction\": true},"
				    " \"layers\": {\"conv2\": {\"bits\": 2, \"act_bits\": 6}},"
				    " \"metadata\": {\"trial\": 17}}");
	cr_assert_eq(p->layers[0].bits, 4);
	cr_assert(p->layers[0].bias_correction);
	cr_assert_eq(p->layers[1].bits, 2);
	cr_assert_eq(p->layers[1].act_bits, 6);
	cr_assert(p->layers[1].bias_correction, "unset fields come from the default");
	cr_assert_eq(p->layers[2].act_bits, 8);
	char *text = policy_to_json(p, LAYERS);
	struct policy *q = parse_ok(text);
	for (int i = 0; i < N_LAYERS; i++) {
		const struct layer_policy *a = &p->layers[i], *c = &q->layers[i];
		cr_assert(a->bits == c->bits && a->act_bits == c->act_bits &&
			  a->bias_correction == c->bias_correction && a->prune == c->prune &&
			  a->prune_kind == c->prune_kind && a->rank == c->rank,
			  "layer %d does not round-trip through %s", i, text);
	}
	free(text);
	policy_free(p);
	policy_free(q);
	p = parse_ok("{}");
	cr_assert_eq(p->layers[2].bits, 8);
	policy_free(p);
}

Test(policy, validation_errors_name_the_field)
{
	parse_err("{\"layers\": {\"conv9\": {\"bits\": 4}}}", PRESSO_E_CONFIG,
		  "layers.conv9: no such layer");
	parse_err("{\"layers\": {\"conv1\": {\"bitz\": 4}}}", PRESSO_E_CONFIG,
		  "layers.conv1: unknown key 'bitz'");
	parse_err("{\"defaults\": {}}", PRESSO_E_CONFIG, "unknown key 'defaults'");
	parse_err("{\"default\": {\"bits\": 9}}", PRESSO_E_CONFIG, "default.bits");
	parse_err("{\"default\": {\"bits\": 0}}", PRESSO_E_CONFIG, "default.bits");
	parse_err("{\"layers\": {\"fc\": {\"bits\": 4.5}}}", PRESSO_E_CONFIG, "layers.fc.bits");
	parse_err("{\"layers\": {\"fc\": {\"act_bits\": 3}}}", PRESSO_E_CONFIG, "layers.fc.act_bits");
	parse_err("{\"layers\": {\"fc\": {\"bias_correction\": 1}}}", PRESSO_E_CONFIG,
		  "layers.fc.bias_correction");
	parse_err("{\"layers\": {\"fc\": {\"prune_kind\": \"diagonal\"}}}", PRESSO_E_CONFIG,
		  "layers.fc.prune_kind");
	parse_err("{\"layers\": {\"fc\": {\"prune\": 0.99}}}", PRESSO_E_CONFIG, "layers.fc.prune");
	parse_err("{\"layers\": {\"fc\": {\"prune\": -0.1}}}", PRESSO_E_CONFIG, "layers.fc.prune");
	parse_err("{\"layers\": {\"fc\": {\"prune\": 0.95, \"prune_kind\": \"structured\"}}}",
		  PRESSO_E_CONFIG, "layers.fc.prune: 0.95 of 10 output channels removes every channel");
	parse_err("{\"layers\": {\"fc\": {\"rank\": 0}}}", PRESSO_E_CONFIG, "layers.fc.rank: 0 is not a rank");
	parse_err("{\"layers\": {\"fc\": {\"rank\": 1.5}}}", PRESSO_E_CONFIG,
		  "layers.fc.rank: 1.5 is neither a fraction");
	parse_err("{\"layers\": {\"fc\": {\"rank\": 11}}}", PRESSO_E_CONFIG,
		  "layers.fc.rank: 11 is above the layer's full rank 10");
	parse_err("{\"layers\": {\"conv2\": {\"rank\": \"half\"}}}", PRESSO_E_CONFIG, "layers.conv2.rank");
	parse_err("{\"layers\": [1, 2]}", PRESSO_E_CONFIG, "layers: expected an object");
	parse_err("[1]", PRESSO_E_CONFIG, "a policy is a JSON object");
	parse_err("{\"default\": {\"bits\": 4,}", PRESSO_E_CONFIG, "p.json:1:");
	parse_err("{\"default\": 4}", PRESSO_E_CONFIG, "default");
}

/* A layer named twice used to take the last entry silently. */
Test(policy, a_layer_named_twice_is_refused)
{
	parse_err("{\"layers\": {\"conv2\": {\"bits\": 2}, \"fc\": {\"bits\": 4},"
		  " \"conv2\": {\"bits\": 8}}}",
		  PRESSO_E_CONFIG, "p.json: layers.conv2: the layer appears twice");
	/* and as before for any other repeated key */
	parse_err("{\"layers\": {\"fc\": {\"bits\": 2, \"bits\": 4}}}", PRESSO_E_CONFIG,
		  "key 'bits' appears twice");
	parse_err("{\"default\": {}, \"default\": {}}", PRESSO_E_CONFIG,
		  "key 'default' appears twice");
}

Test(policy, prune_and_rank)
{
	struct policy *p = parse_ok("{\"default\": {\"prune\": 0.5}, \"layers\": {\"conv2\":"
				    " {\"prune\": 0.25, \"prune_kind\": \"structured\", \"rank\": 4},"
				    " \"fc\": {\"rank\": 0.5}}}");
	cr_assert_float_eq(p->layers[0].prune, 0.5, 1e-12);
	cr_assert_eq(p->layers[0].prune_kind, PRUNE_UNSTRUCTURED);
	cr_assert_eq(p->layers[1].prune_kind, PRUNE_STRUCTURED);
	cr_assert_float_eq(p->layers[1].rank, 4.0, 1e-12);
	/* a fraction of full rank rounds; an integer is the rank itself */
	cr_assert_eq(policy_rank_of(&LAYERS[2], p->layers[2].rank), 5);
	cr_assert_eq(policy_rank_of(&LAYERS[1], p->layers[1].rank), 4);
	cr_assert_eq(policy_full_rank(&LAYERS[1]), 16);
	cr_assert_eq(policy_full_rank(&LAYERS[0]), 6);
	policy_free(p);
}

/* cJSON prints a double with 15 significant digits whenever they come within
 * DBL_EPSILON of it, which is not always the same double: found by
 * tests/fuzz/fuzz_policy.c (prune 0.9111111111111111 came back one ulp off). */
Test(policy, to_json_round_trips_every_double)
{
	struct layer_policy lp = policy_default_layer();
	lp.prune = nextafter(0.5, 1.0);  /* 0.50000000000000011: 17 digits */
	lp.rank = nextafter(0.3, 0.0);   /* 0.29999999999999993 */
	struct policy *p;
	cr_assert_eq(policy_uniform(&lp, N_LAYERS, &p), PRESSO_OK);
	p->layers[1].prune = 0.9111111111111111;
	p->layers[2].rank = 1.0 / 3.0;
	char *text = policy_to_json(p, LAYERS);
	struct policy *q = parse_ok(text);
	for (int i = 0; i < N_LAYERS; i++)
		cr_assert(p->layers[i].prune == q->layers[i].prune &&
				  p->layers[i].rank == q->layers[i].rank,
			  "layer %d: prune %.17g rank %.17g came back as %.17g, %.17g from %s", i,
			  p->layers[i].prune, p->layers[i].rank, q->layers[i].prune,
			  q->layers[i].rank, text);
	free(text);
	policy_free(p);
	policy_free(q);
	/* values cJSON already wrote exactly keep their short form */
	p = parse_ok("{\"default\": {\"prune\": 0.25, \"rank\": 0.5}}");
	text = policy_to_json(p, LAYERS);
	cr_assert(strstr(text, "0.25") && strstr(text, "0.5") && !strstr(text, "0.2500"), "%s", text);
	free(text);
	policy_free(p);
}

Test(policy, missing_file)
{
	struct policy *p;
	cr_assert_eq(policy_load("/nonexistent/p.json", LAYERS, N_LAYERS, &p), PRESSO_E_IO);
	cr_assert(strstr(status_msg(), "/nonexistent/p.json"));
	cr_assert(strstr(status_msg(), "int8 / int4"), "suggests the shorthands: %s", status_msg());
}

Test(policy, template_lists_every_layer_and_reads_back)
{
	char *dir = fx_tmpdir();
	const char *out = fx_join(dir, "t.json");
	char args[1024], *err;
	snprintf(args, sizeof args, "policy --model %s -o %s", fx_src("models/mobilenetv2.onnx"), out);
	cr_assert_eq(fx_presso(args, NULL, &err), 0, "%s", err);
	free(err);
	struct graph *g;
	cr_assert_eq(graph_load_onnx(fx_src("models/mobilenetv2.onnx"), &g), PRESSO_OK);
	struct layer *ls;
	int n;
	cr_assert_eq(graph_layers(g, &ls, &n), PRESSO_OK);
	struct policy *p;
	cr_assert_eq(policy_load(out, ls, n, &p), PRESSO_OK, "%s", status_msg());
	struct layer_policy id = policy_default_layer();
	for (int i = 0; i < n; i++)
		cr_assert(p->layers[i].bits == id.bits && p->layers[i].act_bits == id.act_bits &&
				  p->layers[i].bias_correction == id.bias_correction &&
				  p->layers[i].prune == id.prune &&
				  p->layers[i].prune_kind == id.prune_kind && p->layers[i].rank == id.rank,
			  "layer %d is not the default", i);
	char *text = fx_read(out, NULL);
	for (int i = 0; i < n; i++)
		cr_assert(strstr(text, ls[i].name), "the template names %s", ls[i].name);
	cr_assert(strstr(text, "\"full_rank\""), "metadata describes the layers");
	free(text);
	policy_free(p);
	free(ls);
	graph_free(g);
	/* neither or both of --model and --config, an unknown short option */
	cr_assert_eq(fx_presso("policy", NULL, NULL), 2);
	cr_assert_eq(fx_presso("policy --model x.onnx -x", NULL, &err), 2);
	cr_assert(strstr(err, "unknown option '-x'"), "%s", err);
	free(err);
	snprintf(args, sizeof args, "policy --model %s -o %s", fx_src("models/nope.onnx"), out);
	cr_assert_eq(fx_presso(args, NULL, &err), 2);
	cr_assert(strstr(err, "nope.onnx"), "%s", err);
	free(err);
	cr_assert(fx_rmtree(dir));
	free(dir);
}
