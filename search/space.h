/* space.h - what a search may try and what it aims for: the config sections
 * "space", "objectives", "constraints" and "search", and the genome that
 * encodes one policy of the space.
 *
 * Config (every section optional; defaults in brackets):
 *   "space": {
 *     "default": { "bits": [2,3,4,5,6,8], "act_bits": [8],
 *                  "bias_correction": [false, true],
 *                  "prune": [0], "prune_kind": ["unstructured"], "rank": [1] },
 *     "layers": { "<name or fnmatch glob>": { "bits": [4, 8] }, ... },
 *     "frozen": [ "<name or glob>", ... ]            fixed at W8A8 (the identity)
 *            or { "<name or glob>": { "bits": 8 }, ... }   fixed at these values
 *   },
 *   "objectives": { "maximize": "accuracy", "minimize": ["size"] },
 *                                         minimize: 1 or 2 of size, bops, latency
 *   "constraints": { "max_size_kb": 64, "max_size_bytes": ..., "max_latency_us": ...,
 *                    "max_latency_ms": ..., "min_accuracy": ..., "max_accuracy_drop": ...,
 *                    "confidence": 0.95 },    the accuracy bounds hold at this one-sided
 *                                         confidence, in (0.5, 1) [none: point values]
 *   "search": { "strategy": "hybrid" | "random" | "bandit" | "evolution",
 *               "bandit": "thompson" | "ucb", "seed": 1, "max_trials": 100,
 *               "time_limit": "8h", "population": 16, "batch": population,
 *               "ucb_c": 1.4142, "discount": 0.99, "crossover_rate": 0.9,
 *               "latency_runs": 25, "sensitivity": false, "sensitivity_images": 256 }
 *
 * A knob's domain is a value or an array of values (a value fixes the knob).
 * Layers take the default domains, then every "layers" entry whose pattern
 * matches the layer's name (in file order, knob by knob), then "frozen". Each
 * pattern must match at least one layer. Values are checked against what
 * presso can do: bits 1..8, act_bits 4..8, prune 0..0.95, prune_kind
 * "unstructured" | "structured", rank a fraction of full rank in (0, 1]. A layer
 * the transforms cannot change as asked (a rank on a depthwise conv, structured
 * pruning into a residual Add) is handled as transform.h says: left as it is
 * with a note, or the trial fails with the reason.
 *
 * Genome: one byte per (layer, knob), layer-major, the index of the layer's
 * choice in that knob's domain (domains are sorted ascending, so index + 1 is
 * "one step up": more bits, bias correction on). A knob whose domain has one
 * value is fixed; the others are the free genes the strategies change.
 */
#ifndef PRESSO_SPACE_H
#define PRESSO_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "db/store.h"
#include "model/graph.h"
#include "quant/policy.h"
#include "search/bandit.h"
#include "base/rng.h"
#include "base/status.h"

struct cJSON;

#define SPACE_MAX_VALUES 16   /* values in one knob's domain */
#define SPACE_MAX_OBJECTIVES 3

enum knob {
	KNOB_BITS,
	KNOB_ACT_BITS,
	KNOB_BIAS_CORRECTION,
	KNOB_PRUNE,
	KNOB_PRUNE_KIND,
	KNOB_RANK,
	KNOB_COUNT
};

/* "bits", "act_bits", ... (the policy and config key). */
const char *space_knob_name(enum knob k);

enum strategy_kind {
	STRATEGY_RANDOM,
	STRATEGY_BANDIT,
	STRATEGY_EVOLUTION,
	STRATEGY_HYBRID,
	STRATEGY_COUNT
};

/* "random", "bandit", "evolution", "hybrid". */
const char *space_strategy_name(enum strategy_kind s);

struct knob_domain {
	int n;
	double v[SPACE_MAX_VALUES]; /* ascending; bool 0/1; prune_kind an enum prune_kind */
};

struct layer_space {
	struct knob_domain d[KNOB_COUNT];
	bool frozen;
};

/* NAN where the config sets no bound. */
struct space_constraints {
	double max_size_bytes;
	double max_latency_us;
	double min_accuracy;      /* percent, validation split */
	double max_accuracy_drop; /* points below the FP32 validation accuracy */
	double confidence;        /* the accuracy bounds' one-sided confidence, in
				     (0.5, 1): the best must meet them with the
				     Wilson lower bound of its accuracy
				     (base/stats.h); NAN: with the point value */
};

/* search.sensitivity_images: a 0.39-point resolution, about a quarter of a
 * trial's evaluation at 1,000 validation images (search/sensitivity.h) */
#define SPACE_SENSITIVITY_IMAGES 256
/* search.fidelity.confidence default: the candidate's accuracy on the subset
 * at its one-sided 80 % upper Wilson bound (chosen on a LeNet pilot, 20 s
 * runs: 0.5 screened out 92 % of the candidates and lost hypervolume, 0.95
 * screened out 2 %; bench/RESULTS.md) */
#define SPACE_FIDELITY_CONFIDENCE 0.8
#define SPACE_MAX_FINETUNE_FRONT 1000 /* search.finetune_front: more is surely a typo */

struct space_search {
	enum strategy_kind strategy;
	enum bandit_algo bandit;
	uint64_t seed;
	int64_t max_trials;       /* 0: not set in the config */
	double time_limit_s;      /* 0: not set */
	int population;
	int batch;                /* candidates generated and evaluated together */
	double ucb_c;
	double discount;
	double crossover_rate;
	int latency_runs;         /* runs per latency-table entry and per final measurement */
	int finetune_front;       /* fine-tune this many of the smallest feasible front
				     trials once the budget is spent (0: none) */
	double finetune_reach;    /* points: with finetune_front, the search's accuracy
				     bounds are this much looser (fine-tuning wins the
				     accuracy back), the front covers them and the trials
				     to tune are spread over its members smaller than
				     the best trial (0: the constraints as written) */
	bool sensitivity;         /* measure per-layer sensitivity at the start of a new
				     study, seed the first generation and the bandits'
				     priors with it (search/sensitivity.h) */
	int64_t sensitivity_images; /* validation images it is measured on */
	int64_t fidelity_images;  /* multi-fidelity (search.fidelity): candidates are
				     first scored on this many validation images, the
				     first ones of the split; 0: off */
	double fidelity_confidence; /* promotion to the whole split: when the upper
				       Wilson bound of the low-fidelity accuracy at this
				       confidence could reach the front */
	int64_t rescore_images;   /* before the test re-check, front trials whose
				     accuracy interval straddles an accuracy bound
				     (constraints.confidence) are scored on this many
				     more training images, after the validation
				     split; 0: off */
};

struct space {
	int n_layers;
	const struct layer *layers; /* the caller's; must outlive the space */
	struct layer_space *ls;     /* [n_layers] */
	int n_genes;                /* n_layers * KNOB_COUNT */
	int n_free;                 /* genes whose domain has more than one value */
	int *free_genes;            /* [n_free] gene indices, ascending */
	int n_obj;
	enum store_objective obj[SPACE_MAX_OBJECTIVES]; /* obj[0] is accuracy */
	struct space_constraints con;
	struct space_search search;
	bool needs_latency;         /* latency is an objective or a constraint */
};

/* Reads the four sections of a study config (root: the whole document, e.g.
 * config->json) for a model's layers. Every error is PRESSO_E_CONFIG (or
 * PRESSO_E_UNSUPPORTED for pruning/low-rank values) naming the field's path
 * ("space.layers./fc1/Gemm.bits[2]: expected an integer in 1..8, got 9").
 * The caller frees *out with space_free(). */
enum presso_status space_parse(const struct cJSON *root, const struct layer *layers, int n_layers,
			       struct space **out);

/* The sections "objectives", "constraints" and "search" alone, checked as
 * space_parse checks them, into a space without layers (n_layers and n_genes
 * 0): what a stored study aimed for, read without its model (`presso report`
 * feeds it to an archive to replay the study's best trial). Free with
 * space_free(). */
enum presso_status space_parse_goals(const struct cJSON *root, struct space **out);

void space_free(struct space *s);

/* Narrows the space to what the model's structure allows, with a line on log
 * (may be NULL) for each change: a layer whose structured pruning transform.h
 * refuses (a residual Add, a depthwise conv...) is pruned unstructured only; a
 * grouped convolution keeps full rank. Deterministic, so a resumed study sees
 * the same space. */
enum presso_status space_fit_graph(struct space *sp, const struct graph *g, FILE *log);

/* "90s", "15m", "8h", "1.5h" -> seconds (> 0); false if not such a text. */
bool space_parse_duration(const char *text, double *seconds);

/* Number of distinct policies in the space (exact up to 2^53, then a
 * floating-point approximation; +INFINITY beyond the range of a double). */
double space_size(const struct space *s);

/* space_size() as people read it: "6.62e+24", or "more than 1e+308" when it
 * is past a double's range. Returns buf. */
const char *space_size_text(double size, char *buf, size_t n);

/* Genome helpers; a genome is n_genes bytes. */
void space_genome_random(const struct space *s, struct rng *r, uint8_t *g);

/* Writes the policy a genome encodes into p (p->n_layers == n_layers). */
void space_genome_to_policy(const struct space *s, const uint8_t *g, struct policy *p);

/* The genome of the space nearest to a policy: each knob takes the domain
 * value nearest the policy's (ties to the larger). Returns true when every
 * value was in its domain (the policy is in the space). */
bool space_genome_from_policy(const struct space *s, const struct policy *p, uint8_t *g);

/* The first-generation seeds: 0 = W8A8 everywhere, 1 = W4A8 with the first
 * and last layer at 8 bits (the "int4" shorthand), snapped to the space. */
#define SPACE_N_SEEDS 2
enum presso_status space_genome_seed(const struct space *s, int which, uint8_t *g);

#endif
