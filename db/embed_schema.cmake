# embed_schema.cmake - turns db/schema.sql into a C source at build time.
#
# cmake -DIN=db/schema.sql -DOUT=gen/db_schema.c -P db/embed_schema.cmake
# writes `const unsigned char db_schema_sql[]` holding the file's bytes and a final NUL,
# as hex byte constants (no escaping to get wrong, no string-length limits).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n_hex)
math(EXPR n_bytes "${n_hex} / 2")
set(body "")
set(pos 0)
while(pos LESS n_hex)
  # 16 bytes (32 hex digits) per line
  string(SUBSTRING "${hex}" ${pos} 32 chunk)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," chunk "${chunk}")
  string(APPEND body "\t${chunk}\n")
  math(EXPR pos "${pos} + 32")
endwhile()
file(WRITE "${OUT}"
  "/* Generated from db/schema.sql by db/embed_schema.cmake: do not edit. */\n"
  "#include <stddef.h>\n\n"
  "extern const unsigned char db_schema_sql[];\n"
  "extern const size_t db_schema_sql_bytes;\n\n"
  "const unsigned char db_schema_sql[] = {\n${body}\t0x00\n};\n"
  "const size_t db_schema_sql_bytes = ${n_bytes};\n")
