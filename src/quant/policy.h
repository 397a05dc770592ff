/* policy.h - a compression policy: the per-layer choices a search finds.
 *
 * JSON form (what `presso export` writes and `presso eval --policy` takes):
 *   {
 *     "default": { "bits": 8, "act_bits": 8, "bias_correction": false,
 *                  "prune": 0, "prune_kind": "unstructured", "rank": 1 },
 *     "layers": { "<layer name>": { "bits": 4 }, ... },
 *     "metadata": { ... }          ignored here (written by export)
 *   }
 * Every key is optional; a layer entry overrides the default field by field.
 * bits: weight bits 1..8 (2 = ternary, 1 = binary); act_bits: bits of the
 * layer's INPUT activation, 4..8 (a tensor read by several layers takes the
 * largest); bias_correction: shift the bias by the mean output error its weight
 * quantization causes on the calibration data; prune: the fraction 0..0.95 of
 * weights (unstructured: the smallest magnitudes) or of output channels
 * (structured: the smallest L1 norms) removed; rank: a fraction in (0, 1] of the
 * layer's full rank min(c_out, c_in*kh*kw) (1 = no factorisation), or an integer
 * rank >= 2. transform.h says how they are applied.
 * Shorthands: "int8" = W8A8 everywhere; "int4" = W4A8 with the first and last
 * layer at 8 bits. Unknown layer names and unknown keys are errors naming the path.
 */
#ifndef PRESSO_POLICY_H
#define PRESSO_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "model/graph.h"

enum prune_kind { PRUNE_UNSTRUCTURED, PRUNE_STRUCTURED };

struct layer_policy {
	int bits;
	int act_bits;
	bool bias_correction;
	double prune;
	enum prune_kind prune_kind;
	double rank;
};

struct policy {
	int n_layers;
	struct layer_policy *layers; /* [n_layers], in graph_layers() order */
};

/* Resolves a policy for the layers of a model from JSON text. `where` names the
 * source in messages (a file name). The caller frees *out with policy_free(). */
enum presso_status policy_parse(const char *text, const char *where, const struct layer *layers,
				int n_layers, struct policy **out);

/* Same from a file path or a shorthand ("int8", "int4"). */
enum presso_status policy_load(const char *path_or_shorthand, const struct layer *layers,
			       int n_layers, struct policy **out);

/* A uniform policy (every layer the same). */
enum presso_status policy_uniform(const struct layer_policy *lp, int n_layers,
				  struct policy **out);

/* The canonical JSON text of a policy (only the fields that differ from the
 * default are written per layer); the caller free()s it. NULL when out of
 * memory. */
char *policy_to_json(const struct policy *p, const struct layer *layers);

/* Checks a layer's choices against its shape: an integer rank above full rank,
 * structured pruning that removes every channel. Errors name the layer and field. */
enum presso_status policy_check_layer(const struct layer *l, const struct layer_policy *lp);

/* Full rank min(c_out, c_in*kh*kw) of a layer, and the integer rank a policy
 * rank value (fraction or integer) gives it (at least 1). */
int64_t policy_full_rank(const struct layer *l);
int64_t policy_rank_of(const struct layer *l, double rank);

/* A deep copy. */
enum presso_status policy_copy(const struct policy *p, struct policy **out);

void policy_free(struct policy *p);

/* The identity choice: W8A8, no bias correction, no pruning, full rank. */
struct layer_policy policy_default_layer(void);

#endif
