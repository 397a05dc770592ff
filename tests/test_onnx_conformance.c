/* test_onnx_conformance.c - the ONNX conformance cases of Debian's libonnx-testdata
 * (per-op models with inputs and expected outputs as TensorProto .pb files) run
 * through presso's importer and FP32 engine.
 *
 * Operands that presso requires to be constant (Clip bounds, Reshape shape,
 * Squeeze/Unsqueeze axes, Dropout ratio, Pad pads, ReduceMean axes, Slice
 * starts/ends/axes/steps, Split sizes, Gather indices, Resize roi, scales and
 * sizes, ConvTranspose weight and bias) are graph inputs in
 * these cases; the harness turns them into initializers from their .pb data
 * before loading, as an exporter would. LayerNormalization's cases also read
 * its Mean and InvStdDev outputs, which presso does not produce: those graph
 * outputs are dropped, and Y is compared. An LSTM's sequence_lens that holds
 * the full sequence length for every sequence is left out, as exporters
 * do. Every case whose name starts with a
 * supported op is run: it must either match the expected output or be
 * refused with a clean PRESSO_E_UNSUPPORTED error; the REQUIRED list must
 * match.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/engine.h"
#include "model/graph.h"
#include "onnx.pb-c.h"
#include "tests/fixtures.h"

/* The reference outputs were computed in float32 (or float64) by numpy; kernels
 * that sum in a different order differ in the last bits, and exp/log differ by a
 * few ulp: a relative 1e-4 plus an absolute 1e-5 covers that and nothing more. */
#define CONF_RTOL 1e-4
#define CONF_ATOL 1e-5

enum case_result { CASE_PASS, CASE_UNSUPPORTED, CASE_FAIL, CASE_ABSENT };

static bool freezes_params(const char *op)
{
	return strcmp(op, "Clip") == 0 || strcmp(op, "Reshape") == 0 ||
	       strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0 ||
	       strcmp(op, "Dropout") == 0 || strcmp(op, "Pad") == 0 ||
	       strcmp(op, "ReduceMean") == 0 || strcmp(op, "Slice") == 0 ||
	       strcmp(op, "Split") == 0 || strcmp(op, "Gather") == 0 ||
	       strcmp(op, "Resize") == 0 || strcmp(op, "ConvTranspose") == 0 ||
	       strcmp(op, "ReduceSum") == 0 || strcmp(op, "ReduceMax") == 0 ||
	       strcmp(op, "ReduceMin") == 0 || strcmp(op, "ReduceL2") == 0 ||
	       strcmp(op, "ReduceSumSquare") == 0 || strcmp(op, "LSTM") == 0 ||
	       strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0;
}

static Onnx__TensorProto *read_tensor(const char *path)
{
	size_t n;
	char *bytes = fx_read(path, &n);
	if (!bytes)
		return NULL;
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, n, (const uint8_t *)bytes);
	free(bytes);
	return t;
}

/* Whether the case's one node is an RNN, GRU or LSTM whose sequence_lens
 * (input 4, in the case's data as input_4.pb) holds the sequence length of X
 * (graph input 0) for every sequence: what an exporter leaves out. */
static bool rnn_full_lengths(const char *dir, const Onnx__GraphProto *g)
{
	const Onnx__NodeProto *np = g->node[0];
	if ((strcmp(np->op_type, "LSTM") != 0 && strcmp(np->op_type, "GRU") != 0 &&
	     strcmp(np->op_type, "RNN") != 0) ||
	    g->n_input < 5 || strcmp(g->input[4]->name, np->input[4]) != 0)
		return false;
	const Onnx__TypeProto *ty = g->input[0]->type;
	if (!ty || !ty->tensor_type || !ty->tensor_type->shape ||
	    ty->tensor_type->shape->n_dim != 3)
		return false;
	int64_t layout = 0;
	for (size_t i = 0; i < np->n_attribute; i++)
		if (strcmp(np->attribute[i]->name, "layout") == 0)
			layout = np->attribute[i]->i;
	int64_t seq = ty->tensor_type->shape->dim[layout == 1 ? 1 : 0]->dim_value;
	char path[2048];
	snprintf(path, sizeof path, "%s/test_data_set_0/input_4.pb", dir);
	Onnx__TensorProto *t = read_tensor(path);
	/* int32, in int32_data or as raw little-endian bytes */
	size_t count = !t ? 0 : t->n_int32_data ? t->n_int32_data : t->raw_data.len / 4;
	bool full = count > 0;
	for (size_t i = 0; full && i < count; i++) {
		int32_t v = t->int32_data ? t->int32_data[i] : 0;
		if (!t->n_int32_data)
			memcpy(&v, t->raw_data.data + 4 * i, 4);
		full = v == seq;
	}
	if (t)
		onnx__tensor_proto__free_unpacked(t, NULL);
	return full;
}

/* Rewrites the model so that inputs >= 1 of a parameter-taking op become
 * initializers; returns the new serialized model (free()) and how many graph
 * inputs remain runtime inputs. */
static uint8_t *freeze_inputs(const char *dir, const uint8_t *bytes, size_t n, size_t *n_out,
			      int *n_runtime)
{
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, bytes);
	if (!m)
		return NULL;
	Onnx__GraphProto *g = m->graph;
	*n_runtime = (int)g->n_input;
	bool freeze = g->n_node == 1 && freezes_params(g->node[0]->op_type);
	if (g->n_node == 1 && strcmp(g->node[0]->op_type, "LayerNormalization") == 0 &&
	    g->n_output > 1) {
		/* Y only: keep the counts to restore them before freeing */
		size_t n_graph_out = g->n_output, n_node_out = g->node[0]->n_output;
		g->n_output = 1;
		g->node[0]->n_output = 1;
		*n_out = onnx__model_proto__get_packed_size(m);
		uint8_t *out = malloc(*n_out);
		onnx__model_proto__pack(m, out);
		g->n_output = n_graph_out;
		g->node[0]->n_output = n_node_out;
		onnx__model_proto__free_unpacked(m, NULL);
		return out;
	}
	Onnx__TensorProto **extra = NULL;
	size_t n_extra = 0;
	char *seq_lens_name = NULL;
	if (freeze && g->node[0]->n_input > 4 && rnn_full_lengths(dir, g)) {
		/* sequence_lens equal to the sequence length everywhere: as absent */
		seq_lens_name = g->node[0]->input[4];
		g->node[0]->input[4] = (char *)"";
	}
	if (freeze && g->n_input > 1) {
		extra = calloc(g->n_input, sizeof *extra);
		for (size_t i = 1; i < g->n_input; i++) {
			char path[2048];
			snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, i);
			Onnx__TensorProto *t = read_tensor(path);
			if (!t)
				continue;
			free(t->name);
			t->name = strdup(g->input[i]->name);
			extra[n_extra++] = t;
		}
		*n_runtime = 1;
		/* the frozen inputs stay listed as inputs; the importer skips inputs that are
		 * initializers, as with older exporters */
		Onnx__TensorProto **inits = malloc(sizeof *inits * (g->n_initializer + n_extra));
		for (size_t i = 0; i < g->n_initializer; i++)
			inits[i] = g->initializer[i];
		for (size_t i = 0; i < n_extra; i++)
			inits[g->n_initializer + i] = extra[i];
		Onnx__TensorProto **old = g->initializer;
		size_t n_old = g->n_initializer;
		g->initializer = inits;
		g->n_initializer += n_extra;
		*n_out = onnx__model_proto__get_packed_size(m);
		uint8_t *out = malloc(*n_out);
		onnx__model_proto__pack(m, out);
		g->initializer = old;
		g->n_initializer = n_old;
		if (seq_lens_name)
			g->node[0]->input[4] = seq_lens_name;
		free(inits);
		for (size_t i = 0; i < n_extra; i++)
			onnx__tensor_proto__free_unpacked(extra[i], NULL);
		free(extra);
		onnx__model_proto__free_unpacked(m, NULL);
		return out;
	}
	onnx__model_proto__free_unpacked(m, NULL);
	uint8_t *copy = malloc(n);
	memcpy(copy, bytes, n);
	*n_out = n;
	return copy;
}

static enum case_result run_case(const char *name, char *why, size_t why_bytes)
{
	char dir[1024], path[2048];
	snprintf(dir, sizeof dir, "%s/%s", FX_ONNX_NODE_DIR, name);
	snprintf(path, sizeof path, "%s/model.onnx", dir);
	size_t n;
	char *bytes = fx_read(path, &n);
	if (!bytes)
		return CASE_ABSENT;
	size_t n_model;
	int n_runtime;
	uint8_t *model = freeze_inputs(dir, (const uint8_t *)bytes, n, &n_model, &n_runtime);
	free(bytes);
	if (!model) {
		snprintf(why, why_bytes, "model does not parse");
		return CASE_FAIL;
	}
	struct graph *g = NULL;
	enum presso_status s = graph_load_onnx_bytes(model, n_model, dir, &g);
	free(model);
	if (s == PRESSO_E_UNSUPPORTED) {
		snprintf(why, why_bytes, "%s", status_msg());
		return CASE_UNSUPPORTED;
	}
	if (s != PRESSO_OK) {
		snprintf(why, why_bytes, "load: %s", status_msg());
		return CASE_FAIL;
	}
	enum case_result result = CASE_PASS;
	struct engine *e = NULL;
	s = engine_create(g, 1, &e);
	if (s != PRESSO_OK) {
		snprintf(why, why_bytes, "engine: %s", status_msg());
		graph_free(g);
		return s == PRESSO_E_UNSUPPORTED ? CASE_UNSUPPORTED : CASE_FAIL;
	}
	for (int i = 0; i < g->n_inputs && result == CASE_PASS; i++) {
		struct value v;
		snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
		if (graph_load_tensor_pb(path, &v) != PRESSO_OK || !v.data) {
			snprintf(why, why_bytes, "input %d: %s", i, status_msg());
			result = CASE_FAIL;
			break;
		}
		int64_t want = shape_numel(&g->values[g->inputs[i]].shape);
		if (shape_numel(&v.shape) != want) {
			snprintf(why, why_bytes, "input %d has %lld values, model wants %lld", i,
				 (long long)shape_numel(&v.shape), (long long)want);
			result = CASE_FAIL;
		} else {
			memcpy(engine_input(e, i), v.data, sizeof(float) * (size_t)want);
		}
		free(v.name);
		free(v.data);
		free(v.idata);
	}
	if (result == CASE_PASS && engine_run(e, 1) != PRESSO_OK) {
		snprintf(why, why_bytes, "run: %s", status_msg());
		result = CASE_FAIL;
	}
	for (int i = 0; i < g->n_outputs && result == CASE_PASS; i++) {
		struct value v;
		snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, i);
		if (graph_load_tensor_pb(path, &v) != PRESSO_OK || !v.data) {
			snprintf(why, why_bytes, "output %d: %s", i, status_msg());
			result = CASE_FAIL;
			break;
		}
		struct shape os;
		const float *y = engine_output(e, i, &os);
		if (shape_numel(&os) != shape_numel(&v.shape) || os.n_dims != v.shape.n_dims) {
			snprintf(why, why_bytes, "output %d: shape mismatch (%d-D, %lld values; expected %d-D, %lld)",
				 i, os.n_dims, (long long)shape_numel(&os), v.shape.n_dims,
				 (long long)shape_numel(&v.shape));
			result = CASE_FAIL;
		}
		for (int d = 0; result == CASE_PASS && d < os.n_dims; d++)
			if (os.dims[d] != v.shape.dims[d]) {
				snprintf(why, why_bytes, "output %d: dimension %d is %lld, expected %lld", i, d,
					 (long long)os.dims[d], (long long)v.shape.dims[d]);
				result = CASE_FAIL;
			}
		for (int64_t k = 0; result == CASE_PASS && k < shape_numel(&os); k++) {
			double exp_v = v.data[k], got = y[k];
			bool same = (isinf(exp_v) && exp_v == got) || fabs(got - exp_v) <= CONF_ATOL + CONF_RTOL * fabs(exp_v);
			if (!same) {
				snprintf(why, why_bytes, "output %d[%lld] = %.9g, expected %.9g", i,
					 (long long)k, got, exp_v);
				result = CASE_FAIL;
			}
		}
		free(v.name);
		free(v.data);
		free(v.idata);
	}
	engine_free(e);
	graph_free(g);
	return result;
}

/* Cases that presso must run and match exactly (within the tolerances). */
static const char *const REQUIRED[] = {
	"test_add", "test_add_bcast",
	"test_averagepool_1d_default", "test_maxpool_1d_default",
	"test_averagepool_2d_default", "test_averagepool_2d_ceil", "test_averagepool_2d_pads",
	"test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_pads",
	"test_averagepool_2d_precomputed_pads_count_include_pad",
	"test_averagepool_2d_precomputed_same_upper", "test_averagepool_2d_precomputed_strides",
	"test_averagepool_2d_same_lower", "test_averagepool_2d_same_upper",
	"test_averagepool_2d_strides",
	"test_basic_conv_with_padding", "test_basic_conv_without_padding",
	"test_batchnorm_epsilon", "test_batchnorm_example",
	"test_clip", "test_clip_default_inbounds", "test_clip_default_max", "test_clip_default_min",
	"test_clip_example", "test_clip_inbounds", "test_clip_outbounds", "test_clip_splitbounds",
	"test_concat_1d_axis_0", "test_concat_2d_axis_0", "test_concat_2d_axis_1",
	"test_concat_3d_axis_0", "test_concat_3d_axis_1", "test_concat_3d_axis_2",
	"test_concat_3d_axis_negative_1", "test_concat_3d_axis_negative_3",
	"test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding",
	"test_conv_with_strides_no_padding", "test_conv_with_strides_padding",
	"test_dropout_default", "test_dropout_default_ratio",
	"test_flatten_axis0", "test_flatten_axis1", "test_flatten_axis2", "test_flatten_axis3",
	"test_flatten_default_axis", "test_flatten_negative_axis1",
	"test_gemm_all_attributes", "test_gemm_alpha", "test_gemm_beta",
	"test_gemm_default_matrix_bias", "test_gemm_default_no_bias",
	"test_gemm_default_scalar_bias", "test_gemm_default_single_elem_vector_bias",
	"test_gemm_default_vector_bias", "test_gemm_default_zero_bias", "test_gemm_transposeA",
	"test_gemm_transposeB",
	"test_globalaveragepool", "test_globalaveragepool_precomputed",
	"test_identity",
	"test_logsoftmax_axis_0", "test_logsoftmax_axis_1", "test_logsoftmax_axis_2",
	"test_logsoftmax_default_axis", "test_logsoftmax_example_1",
	"test_logsoftmax_large_number", "test_logsoftmax_negative_axis",
	"test_matmul_2d", "test_matmul_3d", "test_matmul_4d",
	"test_maxpool_2d_default", "test_maxpool_2d_ceil", "test_maxpool_2d_dilations",
	"test_maxpool_2d_pads", "test_maxpool_2d_precomputed_pads",
	"test_maxpool_2d_precomputed_same_upper", "test_maxpool_2d_precomputed_strides",
	"test_maxpool_2d_same_lower", "test_maxpool_2d_same_upper", "test_maxpool_2d_strides",
	"test_relu",
	"test_reshape_extended_dims", "test_reshape_negative_dim",
	"test_reshape_negative_extended_dims", "test_reshape_one_dim", "test_reshape_reduced_dims",
	"test_reshape_reordered_all_dims", "test_reshape_reordered_last_dims",
	"test_reshape_zero_and_negative_dim", "test_reshape_zero_dim",
	"test_softmax_axis_0", "test_softmax_axis_1", "test_softmax_axis_2",
	"test_softmax_default_axis", "test_softmax_example", "test_softmax_large_number",
	"test_softmax_negative_axis",
	"test_squeeze", "test_squeeze_negative_axes",
	"test_transpose_all_permutations_0", "test_transpose_all_permutations_1",
	"test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
	"test_transpose_all_permutations_4", "test_transpose_all_permutations_5",
	"test_transpose_default",
	"test_unsqueeze_axis_0", "test_unsqueeze_axis_1", "test_unsqueeze_axis_2",
	"test_unsqueeze_axis_3", "test_unsqueeze_negative_axes", "test_unsqueeze_three_axes",
	"test_unsqueeze_two_axes", "test_unsqueeze_unsorted_axes",
	/* activations, element-wise arithmetic, normalisations */
	"test_sigmoid", "test_sigmoid_example", "test_tanh", "test_tanh_example",
	"test_hardsigmoid", "test_hardsigmoid_default", "test_hardsigmoid_example",
	"test_hardswish", "test_hardswish_expanded",
	"test_leakyrelu", "test_leakyrelu_default", "test_leakyrelu_example",
	"test_prelu_broadcast", "test_prelu_example",
	"test_mul", "test_mul_bcast", "test_mul_example", "test_sub", "test_sub_bcast",
	"test_sub_example", "test_div", "test_div_bcast", "test_div_example",
	"test_pow", "test_pow_bcast_array", "test_pow_bcast_scalar", "test_pow_example",
	"test_sqrt", "test_sqrt_example", "test_erf",
	"test_sum_example", "test_sum_one_input", "test_sum_two_inputs",
	"test_constant_pad",
	"test_reduce_mean_default_axes_keepdims_example",
	"test_reduce_mean_default_axes_keepdims_random",
	"test_reduce_mean_do_not_keepdims_example", "test_reduce_mean_do_not_keepdims_random",
	"test_reduce_mean_keepdims_example", "test_reduce_mean_keepdims_random",
	"test_reduce_mean_negative_axes_keepdims_example",
	"test_reduce_mean_negative_axes_keepdims_random",
	"test_reduce_sum_square_default_axes_keepdims_example",
	"test_reduce_sum_square_default_axes_keepdims_random",
	"test_reduce_sum_square_do_not_keepdims_example",
	"test_reduce_sum_square_do_not_keepdims_random", "test_reduce_sum_square_keepdims_example",
	"test_reduce_sum_square_keepdims_random",
	"test_reduce_sum_square_negative_axes_keepdims_example",
	"test_reduce_sum_square_negative_axes_keepdims_random",
	"test_log", "test_log_example", "test_max_float32", "test_max_one_input",
	"test_max_two_inputs", "test_min_float32", "test_min_one_input", "test_min_two_inputs",
	"test_max_example", "test_min_example",
	"test_reduce_l2_default_axes_keepdims_example",
	"test_reduce_l2_default_axes_keepdims_random",
	"test_reduce_l2_do_not_keepdims_example", "test_reduce_l2_do_not_keepdims_random",
	"test_reduce_l2_keep_dims_example", "test_reduce_l2_keep_dims_random",
	"test_reduce_l2_negative_axes_keep_dims_example",
	"test_reduce_l2_negative_axes_keep_dims_random",
	"test_reduce_max_default_axes_keepdim_example",
	"test_reduce_max_default_axes_keepdims_random",
	"test_reduce_max_do_not_keepdims_example", "test_reduce_max_do_not_keepdims_random",
	"test_reduce_max_keepdims_example", "test_reduce_max_keepdims_random",
	"test_reduce_max_negative_axes_keepdims_example",
	"test_reduce_max_negative_axes_keepdims_random",
	"test_reduce_min_default_axes_keepdims_example",
	"test_reduce_min_default_axes_keepdims_random",
	"test_reduce_min_do_not_keepdims_example", "test_reduce_min_do_not_keepdims_random",
	"test_reduce_min_keepdims_example", "test_reduce_min_keepdims_random",
	"test_reduce_min_negative_axes_keepdims_example",
	"test_reduce_min_negative_axes_keepdims_random",
	"test_reduce_sum_default_axes_keepdims_example",
	"test_reduce_sum_default_axes_keepdims_random",
	"test_reduce_sum_do_not_keepdims_example", "test_reduce_sum_do_not_keepdims_random",
	"test_reduce_sum_empty_axes_input_noop_example",
	"test_reduce_sum_empty_axes_input_noop_random", "test_reduce_sum_keepdims_example",
	"test_reduce_sum_keepdims_random", "test_reduce_sum_negative_axes_keepdims_example",
	"test_reduce_sum_negative_axes_keepdims_random",
	"test_layer_normalization_2d_axis0", "test_layer_normalization_2d_axis1",
	"test_layer_normalization_2d_axis_negative_1", "test_layer_normalization_2d_axis_negative_2",
	"test_layer_normalization_3d_axis0_epsilon", "test_layer_normalization_3d_axis1_epsilon",
	"test_layer_normalization_3d_axis2_epsilon",
	"test_layer_normalization_3d_axis_negative_1_epsilon",
	"test_layer_normalization_3d_axis_negative_2_epsilon",
	"test_layer_normalization_3d_axis_negative_3_epsilon",
	"test_layer_normalization_4d_axis0", "test_layer_normalization_4d_axis1",
	"test_layer_normalization_4d_axis2", "test_layer_normalization_4d_axis3",
	"test_layer_normalization_4d_axis_negative_1", "test_layer_normalization_4d_axis_negative_2",
	"test_layer_normalization_4d_axis_negative_3", "test_layer_normalization_4d_axis_negative_4",
	"test_layer_normalization_default_axis",
	"test_lrn", "test_lrn_default",
	"test_exp", "test_exp_example", "test_neg", "test_neg_example", "test_reciprocal",
	"test_reciprocal_example", "test_abs",
	"test_elu", "test_elu_default", "test_elu_example", "test_selu", "test_selu_default",
	"test_selu_example", "test_celu", "test_softplus", "test_softplus_example",
	"test_softsign", "test_softsign_example", "test_thresholdedrelu",
	"test_thresholdedrelu_default", "test_thresholdedrelu_example",
	"test_slice", "test_slice_default_axes", "test_slice_default_steps",
	"test_slice_end_out_of_bounds", "test_slice_neg", "test_slice_neg_steps",
	"test_slice_negative_axes", "test_slice_start_out_of_bounds",
	"test_split_equal_parts_1d", "test_split_equal_parts_2d",
	"test_split_equal_parts_default_axis", "test_split_variable_parts_1d",
	"test_split_variable_parts_2d", "test_split_variable_parts_default_axis",
	/* Resize, mode nearest, with each coordinate transformation and rounding */
	"test_convtranspose", "test_convtranspose_1d", "test_convtranspose_autopad_same",
	"test_convtranspose_dilations", "test_convtranspose_kernel_shape",
	"test_convtranspose_output_shape", "test_convtranspose_pad", "test_convtranspose_pads",
	"test_convtranspose_with_kernel",
	"test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
	"test_lstm_batchwise", "test_gru_defaults", "test_gru_with_initial_bias",
	"test_gru_seq_length", "test_gru_batchwise", "test_simple_rnn_defaults",
	"test_simple_rnn_with_initial_bias", "test_simple_rnn_batchwise", "test_rnn_seq_length",
	"test_resize_downsample_scales_nearest", "test_resize_downsample_sizes_nearest",
	"test_resize_downsample_scales_linear", "test_resize_downsample_scales_linear_align_corners",
	"test_resize_downsample_sizes_linear_pytorch_half_pixel", "test_resize_upsample_scales_linear",
	"test_resize_upsample_scales_linear_align_corners",
	"test_resize_upsample_scales_nearest", "test_resize_upsample_sizes_nearest",
	"test_resize_upsample_sizes_nearest_ceil_half_pixel",
	"test_resize_upsample_sizes_nearest_floor_align_corners",
	"test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric",
	/* LayerNormalization as its function: Shape, Size, Slice, Sub and Neg of
	 * integers, ConstantOfShape, Concat, Cast fold at load */
	"test_layer_normalization_2d_axis0_expanded", "test_layer_normalization_2d_axis1_expanded",
	"test_layer_normalization_2d_axis_negative_1_expanded",
	"test_layer_normalization_2d_axis_negative_2_expanded",
	"test_layer_normalization_3d_axis0_epsilon_expanded",
	"test_layer_normalization_3d_axis1_epsilon_expanded",
	"test_layer_normalization_3d_axis2_epsilon_expanded",
	"test_layer_normalization_3d_axis_negative_1_epsilon_expanded",
	"test_layer_normalization_3d_axis_negative_2_epsilon_expanded",
	"test_layer_normalization_3d_axis_negative_3_epsilon_expanded",
	"test_layer_normalization_4d_axis0_expanded", "test_layer_normalization_4d_axis1_expanded",
	"test_layer_normalization_4d_axis2_expanded", "test_layer_normalization_4d_axis3_expanded",
	"test_layer_normalization_4d_axis_negative_1_expanded",
	"test_layer_normalization_4d_axis_negative_2_expanded",
	"test_layer_normalization_4d_axis_negative_3_expanded",
	"test_layer_normalization_4d_axis_negative_4_expanded",
	"test_layer_normalization_default_axis_expanded",
};

static bool have_testdata(void)
{
	struct stat st;
	return stat(FX_ONNX_NODE_DIR "/test_relu/model.onnx", &st) == 0;
}

Test(conformance, required_cases_match)
{
	if (!have_testdata())
		cr_skip_test("libonnx-testdata is not installed (scripts/setup.sh installs it)");
	int n_fail = 0;
	for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++) {
		char why[1200] = "";
		enum case_result r = run_case(REQUIRED[i], why, sizeof why);
		if (r != CASE_PASS) {
			n_fail++;
			cr_log_error("%s: %s", REQUIRED[i],
				     r == CASE_ABSENT ? "case missing from libonnx-testdata" : why);
		}
	}
	cr_assert_eq(n_fail, 0, "%d of %zu required conformance cases failed", n_fail,
		     sizeof REQUIRED / sizeof REQUIRED[0]);
}

/* Every case of a supported op either matches or is refused cleanly. */
Test(conformance, supported_ops_match_or_refuse_cleanly)
{
	if (!have_testdata())
		cr_skip_test("libonnx-testdata is not installed (scripts/setup.sh installs it)");
	static const char *const prefixes[] = {
		"test_add", "test_averagepool", "test_basic_conv", "test_batchnorm", "test_clip",
		"test_concat", "test_conv_", "test_dropout", "test_flatten", "test_gemm",
		"test_globalaveragepool", "test_identity", "test_logsoftmax", "test_matmul_",
		"test_maxpool", "test_relu", "test_reshape", "test_softmax", "test_squeeze",
		"test_transpose", "test_unsqueeze",
		"test_sigmoid", "test_tanh", "test_hardsigmoid", "test_hardswish", "test_leakyrelu",
		"test_prelu", "test_mul", "test_sub", "test_div", "test_pow", "test_sqrt",
		"test_erf", "test_sum", "test_constant_pad", "test_edge_pad", "test_reflect_pad",
		"test_reduce_mean", "test_layer_normalization", "test_lrn", "test_exp",
		"test_neg", "test_reciprocal", "test_abs", "test_shape", "test_size",
		"test_constantofshape", "test_gather_", "test_slice", "test_cast_", "test_split",
		"test_resize", "test_elu", "test_selu", "test_celu", "test_softplus", "test_softsign",
		"test_thresholdedrelu", "test_convtranspose", "test_reduce_sum", "test_reduce_max",
		"test_reduce_min", "test_reduce_l2", "test_max_", "test_min_", "test_log",
		"test_lstm", "test_gru", "test_rnn", "test_simple_rnn"};
	DIR *d = opendir(FX_ONNX_NODE_DIR);
	cr_assert_not_null(d);
	struct dirent *ent;
	int n_pass = 0, n_refused = 0, n_fail = 0;
	while ((ent = readdir(d))) {
		bool match = false;
		for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !match; i++)
			match = strncmp(ent->d_name, prefixes[i], strlen(prefixes[i])) == 0;
		if (!match)
			continue;
		char why[1200] = "";
		switch (run_case(ent->d_name, why, sizeof why)) {
		case CASE_PASS:
			n_pass++;
			break;
		case CASE_UNSUPPORTED:
			n_refused++;
			cr_log_info("%s refused: %s", ent->d_name, why);
			break;
		case CASE_FAIL:
			n_fail++;
			cr_log_error("%s: %s", ent->d_name, why);
			break;
		case CASE_ABSENT:
			break;
		}
	}
	closedir(d);
	cr_log_info("conformance: %d matched, %d refused as unsupported", n_pass, n_refused);
	cr_assert_eq(n_fail, 0, "%d cases gave a wrong result or an unclean error", n_fail);
	cr_assert_geq(n_pass, (int)(sizeof REQUIRED / sizeof REQUIRED[0]));
}
