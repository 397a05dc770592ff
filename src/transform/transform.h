/* transform.h - the structural transforms of a policy: pruning and low-rank.
 *
 * transform_apply() copies the FP32 graph and applies, layer by layer in graph
 * order, first every layer's pruning, then every layer's factorisation (the
 * order the policy promises: prune -> low-rank -> quantize). The result is an
 * ordinary graph (it runs on both engines and exports as is) with a policy over
 * its own layers, and for each of its layers the original layer it came from.
 *
 * Unstructured pruning (prune_kind "unstructured", the default) sets the given
 * fraction of the layer's weights with the smallest magnitudes to zero, exactly
 * round(prune * n) of them (ties broken by position). The shapes do not change;
 * the zeros are paid for through the sparse weight coding (quant.h). A
 * recurrent layer's input projection (graph_rnn_projection) prunes the
 * layer's R too, the same fraction of R's own smallest magnitudes, as R also
 * takes its bits; fine-tuning keeps both sets of zeros (tnet_fix_zeros).
 *
 * Structured pruning removes round(prune * c_out) output channels, those with
 * the smallest L1 norm of their weights (ties: the later channel goes), and
 * shrinks every consumer: through Relu, Clip, pools, Identity, BatchNorm and
 * the element-wise functions of one tensor (Sigmoid, HardSwish, ...) and the
 * element-wise arithmetic with a constant (a scalar, or one value per channel,
 * which shrinks with them: a PRelu slope) to the next Conv (its input
 * channels), through a depthwise Conv (its own channels go too, and on to its
 * consumers), through Flatten to a Gemm or MatMul (the columns of the removed
 * channels). A tensor that reaches an Add, a Mul by another tensor (a
 * squeeze-excite gate), a Concat, a graph output, an op that combines channels
 * (LayerNormalization, Softmax, LRN, ReduceMean) or any other op would leave
 * the two branches of a residual (or the two halves of a concatenation, or a
 * gate and its channels) inconsistent: presso refuses to prune such a layer
 * structurally, with a message naming the node it met; prune it unstructured
 * instead. A depthwise or grouped Conv cannot be pruned
 * structurally itself (its channels belong to the layer before).
 *
 * Low-rank: the layer's weight matrix W (c_out x c_in*kh*kw for a Conv, N x K for
 * a Gemm) is replaced by its truncated SVD of rank r, U_r S_r V_r^T (LAPACKE
 * dgesdd in double precision), split as A = S_r^1/2 V_r^T and B = U_r S_r^1/2: a
 * Conv becomes a Conv with A's r filters and the same kernel, stride and pads
 * (no bias), then a 1x1 Conv with B and the original bias; a Gemm becomes a Gemm
 * by A, then a Gemm by B with the bias. The first node is named
 * "<layer>.lowrank"; the second keeps the layer's name and output. When
 * r * (c_out + K) >= c_out * K the factorisation would not reduce parameters: the
 * layer is left as it is and a note says so; the same for grouped Convs, which
 * have no single weight matrix.
 */
#ifndef PRESSO_TRANSFORM_H
#define PRESSO_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "model/graph.h"
#include "quant/policy.h"

/* Size and cost of an FP32 graph, counted as the INT8 size accounting counts
 * them but at 32 bits: params are the non-zero float constants; size_bytes codes
 * each layer's weights like quant.h's sparse coding at 32 bits, every other
 * float constant at 4 bytes; BOPs = MACs * 32 * 32. */
struct graph_cost {
	int64_t params;
	int64_t macs;
	int64_t size_bytes;
	double bops;
};

void transform_cost(const struct graph *g, struct graph_cost *out);

struct transform_result {
	struct graph *g;        /* the transformed graph */
	struct policy *pol;     /* its policy, one entry per layer of g */
	int n_layers;
	int *origin;            /* [n_layers] the original layer of each layer */
	bool *repair;           /* [n_layers] computes something else than its
				   origin did: statistics repair targets it */
	int **channels;         /* [n_layers] for repair targets: the origin's output
				   channel of each output channel, else NULL */
	struct graph_cost before, after_prune, after_lowrank;
	char *notes;            /* one line per layer left unchanged, or NULL */
	bool changed;           /* any weight or structure changed */
};

/* Applies p (one entry per layer of g, in graph_layers() order) to a copy of g.
 * Errors name the layer and the field (layers.<name>.prune or .rank) and say why
 * the policy cannot apply. Free *out with transform_result_free(). */
enum presso_status transform_apply(const struct graph *g, const struct policy *p,
				   struct transform_result *out);

void transform_result_free(struct transform_result *r);

/* Rewrites p (one entry per layer of g) into the canonical form of the model
 * it makes, so that policies that make the same model are equal field by field
 * (the search hashes this form: a trial is always a new model):
 *  - prune_kind is "unstructured" where prune is 0 (nothing is pruned);
 *  - rank is 1 where the factorisation would leave the layer as it is: a
 *    grouped Conv, a MatMul, a Gemm with transA, or an integer rank r with
 *    r (m + k) >= m k for the layer as pruning leaves it (m x k weights) -
 *    full rank, given as 1 or as min(m, k), is the commonest case;
 *  - any other rank is the integer rank r it gives (fractions that round to
 *    the same r make the same model), written as r when r >= 2 and as the
 *    fraction 1 / full rank of the unpruned layer when r is 1 (an integer
 *    rank is at least 2).
 *  - act_bits of a layer left unfactorised is the largest act_bits of the
 *    layers that read the same input tensor (the tensor is quantized at that
 *    width for all of them: qengine_build.c); a factorised layer keeps its
 *    own, which also sets its middle tensor's width.
 * Fields a policy needs to fail (an integer rank above full rank, pruning the
 * transform refuses) are kept, so a failing policy is never merged with one
 * that works. bits and bias_correction are kept: they change the quantized
 * weights of any layer. Fails only when out of memory (p is then partly
 * canonical; the caller drops it). */
enum presso_status transform_canonical(const struct graph *g, struct policy *p);

/* True when p asks for pruning or low-rank anywhere. */
bool transform_needed(const struct policy *p);

/* A deep copy of a graph. */
enum presso_status graph_clone(const struct graph *g, struct graph **out);

/* Truncated SVD: W [m][n] (row-major) -> rank r factors A [r][n], B [m][r] with
 * B A the best rank-r approximation; *discarded gets the sum of the squares of
 * the singular values dropped (= ||W - B A||_F^2). */
enum presso_status transform_svd(const float *w, int64_t m, int64_t n, int64_t r, float *a,
				 float *b, double *discarded);

#endif
