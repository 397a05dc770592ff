/* onnx_builder.c - see onnx_builder.h. */
#define _POSIX_C_SOURCE 200809L
#include "tests/onnx_builder.h"

#include <stdlib.h>
#include <string.h>

static void *keep(struct mb *b, void *p)
{
	if (b->n_allocs == b->cap_allocs) {
		b->cap_allocs = b->cap_allocs ? 2 * b->cap_allocs : 64;
		b->allocs = realloc(b->allocs, sizeof(void *) * b->cap_allocs);
	}
	b->allocs[b->n_allocs++] = p;
	return p;
}

static void *zalloc(struct mb *b, size_t bytes)
{
	return keep(b, calloc(1, bytes ? bytes : 1));
}

static char *dup(struct mb *b, const char *s)
{
	return keep(b, strdup(s));
}

/* Appends item to a protobuf-c repeated field (array of pointers). */
#define PUSH(b, arr, count, item)                                                              \
	do {                                                                                   \
		void *grown = zalloc((b), sizeof(*(arr)) * ((count) + 1));                     \
		if ((count))                                                                   \
			memcpy(grown, (arr), sizeof(*(arr)) * (count));                        \
		(arr) = grown;                                                                 \
		(arr)[(count)++] = (item);                                                     \
	} while (0)

void mb_init(struct mb *b, int64_t opset)
{
	memset(b, 0, sizeof *b);
	onnx__model_proto__init(&b->model);
	onnx__graph_proto__init(&b->graph);
	onnx__operator_set_id_proto__init(&b->opset);
	b->opset.has_version = 1;
	b->opset.version = opset;
	b->opset.domain = dup(b, "");
	b->opsets[0] = &b->opset;
	b->model.has_ir_version = 1;
	b->model.ir_version = 7;
	b->model.n_opset_import = 1;
	b->model.opset_import = b->opsets;
	b->model.producer_name = dup(b, "presso-tests");
	b->model.graph = &b->graph;
	b->graph.name = dup(b, "g");
}

void mb_free(struct mb *b)
{
	for (size_t i = 0; i < b->n_allocs; i++)
		free(b->allocs[i]);
	free(b->allocs);
	memset(b, 0, sizeof *b);
}

static Onnx__TensorProto *tensor(struct mb *b, const char *name, const int64_t *dims, int n_dims,
				 int32_t type, const void *data, size_t elem)
{
	Onnx__TensorProto *t = zalloc(b, sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = dup(b, name);
	t->n_dims = (size_t)n_dims;
	t->dims = zalloc(b, sizeof(int64_t) * (size_t)n_dims);
	size_t count = 1;
	for (int i = 0; i < n_dims; i++) {
		t->dims[i] = dims[i];
		count *= (size_t)dims[i];
	}
	t->has_data_type = 1;
	t->data_type = type;
	t->has_raw_data = 1;
	t->raw_data.len = count * elem;
	t->raw_data.data = zalloc(b, count * elem);
	memcpy(t->raw_data.data, data, count * elem);
	return t;
}

Onnx__TensorProto *mb_tensor_f32(struct mb *b, const char *name, const int64_t *dims, int n_dims,
				 const float *data)
{
	return tensor(b, name, dims, n_dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, data, 4);
}

Onnx__TensorProto *mb_tensor_i64(struct mb *b, const char *name, const int64_t *dims, int n_dims,
				 const int64_t *data)
{
	return tensor(b, name, dims, n_dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, data, 8);
}

Onnx__TensorProto *mb_init_f32(struct mb *b, const char *name, const int64_t *dims, int n_dims,
			       const float *data)
{
	Onnx__TensorProto *t = tensor(b, name, dims, n_dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
				      data, 4);
	PUSH(b, b->graph.initializer, b->graph.n_initializer, t);
	return t;
}

Onnx__TensorProto *mb_init_i64(struct mb *b, const char *name, const int64_t *dims, int n_dims,
			       const int64_t *data)
{
	Onnx__TensorProto *t = tensor(b, name, dims, n_dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
				      data, 8);
	PUSH(b, b->graph.initializer, b->graph.n_initializer, t);
	return t;
}

Onnx__TensorProto *mb_init_bytes(struct mb *b, const char *name, const int64_t *dims,
				 int n_dims, int32_t data_type, const void *data)
{
	Onnx__TensorProto *t = tensor(b, name, dims, n_dims, data_type, data, 1);
	PUSH(b, b->graph.initializer, b->graph.n_initializer, t);
	return t;
}

static Onnx__ValueInfoProto *value_info(struct mb *b, const char *name, const int64_t *dims,
					int n_dims)
{
	Onnx__ValueInfoProto *vi = zalloc(b, sizeof *vi);
	onnx__value_info_proto__init(vi);
	vi->name = dup(b, name);
	Onnx__TypeProto *tp = zalloc(b, sizeof *tp);
	onnx__type_proto__init(tp);
	Onnx__TypeProto__Tensor *tt = zalloc(b, sizeof *tt);
	onnx__type_proto__tensor__init(tt);
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	vi->type = tp;
	if (dims) {
		Onnx__TensorShapeProto *sp = zalloc(b, sizeof *sp);
		onnx__tensor_shape_proto__init(sp);
		for (int i = 0; i < n_dims; i++) {
			Onnx__TensorShapeProto__Dimension *d = zalloc(b, sizeof *d);
			onnx__tensor_shape_proto__dimension__init(d);
			if (dims[i] < 0) {
				d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
				d->dim_param = dup(b, "N");
			} else {
				d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
				d->dim_value = dims[i];
			}
			PUSH(b, sp->dim, sp->n_dim, d);
		}
		tt->shape = sp;
	}
	return vi;
}

void mb_input(struct mb *b, const char *name, const int64_t *dims, int n_dims)
{
	Onnx__ValueInfoProto *vi = value_info(b, name, dims, n_dims);
	PUSH(b, b->graph.input, b->graph.n_input, vi);
}

void mb_output(struct mb *b, const char *name)
{
	Onnx__ValueInfoProto *vi = value_info(b, name, NULL, 0);
	PUSH(b, b->graph.output, b->graph.n_output, vi);
}

Onnx__NodeProto *mb_node(struct mb *b, const char *op, const char *name,
			 const char *const *inputs, const char *output)
{
	Onnx__NodeProto *n = zalloc(b, sizeof *n);
	onnx__node_proto__init(n);
	n->op_type = dup(b, op);
	n->name = dup(b, name);
	for (const char *const *in = inputs; in && *in; in++) {
		char *s = dup(b, *in);
		PUSH(b, n->input, n->n_input, s);
	}
	char *o = dup(b, output);
	PUSH(b, n->output, n->n_output, o);
	PUSH(b, b->graph.node, b->graph.n_node, n);
	return n;
}

void mb_node_output(struct mb *b, Onnx__NodeProto *n, const char *output)
{
	char *o = dup(b, output);
	PUSH(b, n->output, n->n_output, o);
}

static Onnx__AttributeProto *attr(struct mb *b, Onnx__NodeProto *n, const char *name,
				  Onnx__AttributeProto__AttributeType type)
{
	Onnx__AttributeProto *a = zalloc(b, sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = dup(b, name);
	a->has_type = 1;
	a->type = type;
	PUSH(b, n->attribute, n->n_attribute, a);
	return a;
}

void mb_attr_int(struct mb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1;
	a->i = v;
}

void mb_attr_float(struct mb *b, Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1;
	a->f = v;
}

void mb_attr_ints(struct mb *b, Onnx__NodeProto *n, const char *name, const int64_t *v, int count)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = (size_t)count;
	a->ints = zalloc(b, sizeof(int64_t) * (size_t)count);
	memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

void mb_attr_string(struct mb *b, Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	a->has_s = 1;
	a->s.len = strlen(v);
	a->s.data = (uint8_t *)dup(b, v);
}

void mb_attr_tensor(struct mb *b, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
	Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	a->t = t;
}

static float pseudo(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void init_random(struct mb *b, const char *name, const int64_t *dims, int n_dims,
			float amp, float offset, uint32_t *s)
{
	int64_t n = 1;
	for (int i = 0; i < n_dims; i++)
		n *= dims[i];
	float *w = malloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		w[i] = offset + amp * pseudo(s);
	mb_init_f32(b, name, dims, n_dims, w);
	free(w);
}

void mb_new_ops_model(struct mb *b)
{
	uint32_t s = 2024;
	mb_init(b, 17);
	mb_input(b, "x", (int64_t[]){-1, 3, 6, 6}, 4);
	init_random(b, "w0", (int64_t[]){8, 3, 3, 3}, 4, 0.4f, 0, &s);
	init_random(b, "slope", (int64_t[]){8, 1, 1}, 3, 0.2f, 0.1f, &s);
	init_random(b, "w1", (int64_t[]){4, 8, 1, 1}, 4, 0.6f, 0, &s);
	init_random(b, "w2", (int64_t[]){8, 4, 1, 1}, 4, 1.5f, 0, &s);
	init_random(b, "gamma", (int64_t[]){1}, 1, 0.1f, 1.0f, &s);
	init_random(b, "beta", (int64_t[]){1}, 1, 0.1f, 0, &s);
	init_random(b, "w3", (int64_t[]){10, 64}, 2, 0.3f, 0, &s);
	init_random(b, "wt", (int64_t[]){8, 4, 3, 3}, 4, 0.3f, 0, &s);
	init_random(b, "bt", (int64_t[]){8}, 1, 0.1f, 0, &s);
	mb_init_f32(b, "one", NULL, 0, (float[]){1.0f});
	mb_init_f32(b, "two", NULL, 0, (float[]){2.0f});
	mb_init_i64(b, "pads", (int64_t[]){8}, 1, (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1});
	Onnx__NodeProto *n = mb_node(b, "Conv", "conv0", (const char *[]){"x", "w0", NULL}, "c");
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_node(b, "HardSwish", "hswish", (const char *[]){"c", NULL}, "a");
	mb_node(b, "PRelu", "prelu", (const char *[]){"a", "slope", NULL}, "p");
	mb_node(b, "GlobalAveragePool", "squeeze", (const char *[]){"p", NULL}, "s0");
	mb_node(b, "Conv", "reduce", (const char *[]){"s0", "w1", NULL}, "s1");
	mb_node(b, "Relu", "relu", (const char *[]){"s1", NULL}, "s2");
	mb_node(b, "Conv", "expand", (const char *[]){"s2", "w2", NULL}, "s3");
	n = mb_node(b, "HardSigmoid", "gate", (const char *[]){"s3", NULL}, "s4");
	mb_attr_float(b, n, "alpha", 0.25f);
	mb_node(b, "Mul", "excite", (const char *[]){"p", "s4", NULL}, "e");
	n = mb_node(b, "LRN", "lrn", (const char *[]){"e", NULL}, "l");
	mb_attr_int(b, n, "size", 3);
	mb_init_f32(b, "quarter", (int64_t[]){4}, 1, (float[]){1, 1, 0.25f, 0.25f});
	mb_init_i64(b, "back", (int64_t[]){4}, 1, (int64_t[]){1, 8, 6, 6});
	/* 6x6 -> 12x12, then 3x3 and 6x6 by the Resizes */
	n = mb_node(b, "ConvTranspose", "deconv", (const char *[]){"l", "wt", "bt", NULL}, "lt");
	mb_attr_int(b, n, "group", 2);
	mb_attr_ints(b, n, "strides", (int64_t[]){2, 2}, 2);
	mb_attr_ints(b, n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
	mb_attr_ints(b, n, "output_padding", (int64_t[]){1, 1}, 2);
	n = mb_node(b, "Resize", "down", (const char *[]){"lt", "", "quarter", NULL}, "ld");
	mb_attr_string(b, n, "mode", "nearest");
	mb_attr_string(b, n, "coordinate_transformation_mode", "asymmetric");
	mb_attr_string(b, n, "nearest_mode", "floor");
	n = mb_node(b, "Resize", "up", (const char *[]){"ld", "", "", "back", NULL}, "lu");
	mb_attr_string(b, n, "mode", "linear");
	mb_attr_string(b, n, "coordinate_transformation_mode", "pytorch_half_pixel");
	mb_node(b, "Pad", "pad", (const char *[]){"lu", "pads", NULL}, "d");
	n = mb_node(b, "ReduceMean", "rows", (const char *[]){"d", NULL}, "m");
	mb_attr_ints(b, n, "axes", (int64_t[]){3}, 1);
	n = mb_node(b, "ReduceMax", "row_max", (const char *[]){"d", NULL}, "mx");
	mb_attr_ints(b, n, "axes", (int64_t[]){3}, 1);
	n = mb_node(b, "ReduceL2", "row_norm", (const char *[]){"d", NULL}, "l2");
	mb_attr_ints(b, n, "axes", (int64_t[]){-1}, 1);
	mb_init_i64(b, "last", (int64_t[]){1}, 1, (int64_t[]){3});
	mb_node(b, "ReduceSum", "row_sum", (const char *[]){"d", "last", NULL}, "sm");
	mb_node(b, "Sum", "rows_all", (const char *[]){"m", "mx", "l2", "sm", NULL}, "ma");
	n = mb_node(b, "LayerNormalization", "ln", (const char *[]){"ma", "gamma", "beta", NULL}, "h");
	mb_attr_int(b, n, "axis", 1);
	mb_node(b, "Sigmoid", "sig", (const char *[]){"h", NULL}, "sg");
	mb_node(b, "Tanh", "tanh", (const char *[]){"h", NULL}, "th");
	n = mb_node(b, "LeakyRelu", "leaky", (const char *[]){"h", NULL}, "lr");
	mb_attr_float(b, n, "alpha", 0.2f);
	n = mb_node(b, "Elu", "elu", (const char *[]){"h", NULL}, "el");
	mb_attr_float(b, n, "alpha", 0.5f);
	n = mb_node(b, "Selu", "selu", (const char *[]){"h", NULL}, "se");
	mb_attr_float(b, n, "alpha", 1.5f);
	mb_attr_float(b, n, "gamma", 1.25f);
	n = mb_node(b, "Celu", "celu", (const char *[]){"h", NULL}, "ce");
	mb_attr_float(b, n, "alpha", 2.0f);
	mb_node(b, "Softplus", "softplus", (const char *[]){"h", NULL}, "sp");
	mb_node(b, "Softsign", "softsign", (const char *[]){"h", NULL}, "ss");
	n = mb_node(b, "ThresholdedRelu", "thresholded", (const char *[]){"h", NULL}, "tr");
	mb_attr_float(b, n, "alpha", 0.25f);
	mb_node(b, "Sum", "sum",
		(const char *[]){"sg", "th", "lr", "el", "se", "ce", "sp", "ss", "tr", NULL}, "u");
	mb_node(b, "Sub", "sub", (const char *[]){"u", "sg", NULL}, "v");
	mb_node(b, "Abs", "abs", (const char *[]){"v", NULL}, "ab");
	mb_node(b, "Sqrt", "sqrt", (const char *[]){"ab", NULL}, "sq");
	mb_node(b, "Erf", "erf", (const char *[]){"v", NULL}, "er");
	mb_node(b, "Neg", "neg", (const char *[]){"ab", NULL}, "ng");
	mb_node(b, "Exp", "exp", (const char *[]){"ng", NULL}, "ex");
	mb_node(b, "Add", "plus1", (const char *[]){"ab", "one", NULL}, "a1");
	mb_node(b, "Reciprocal", "recip", (const char *[]){"a1", NULL}, "rc");
	mb_node(b, "Pow", "square", (const char *[]){"er", "two", NULL}, "pw");
	mb_node(b, "Mul", "mul", (const char *[]){"sq", "ex", NULL}, "mu");
	mb_node(b, "Div", "div", (const char *[]){"mu", "rc", NULL}, "dv");
	mb_node(b, "Add", "add", (const char *[]){"dv", "pw", NULL}, "z");
	n = mb_node(b, "Split", "halves", (const char *[]){"z", NULL}, "z1");
	mb_attr_int(b, n, "axis", 2);
	char **outs = calloc(2, sizeof *outs);
	outs[0] = n->output[0];
	outs[1] = strdup("z2");
	n->output = outs;
	n->n_output = 2;
	keep(b, outs);
	keep(b, outs[1]);
	n = mb_node(b, "Concat", "swap", (const char *[]){"z2", "z1", NULL}, "zs");
	mb_attr_int(b, n, "axis", 2);
	mb_node(b, "Flatten", "flat", (const char *[]){"zs", NULL}, "f");
	n = mb_node(b, "Gemm", "fc", (const char *[]){"f", "w3", NULL}, "y");
	mb_attr_int(b, n, "transB", 1);
	mb_output(b, "y");
}

uint8_t *mb_pack(struct mb *b, size_t *n_out)
{
	*n_out = onnx__model_proto__get_packed_size(&b->model);
	uint8_t *buf = zalloc(b, *n_out);
	onnx__model_proto__pack(&b->model, buf);
	return buf;
}
