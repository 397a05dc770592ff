/* test_status.c - the status codes' stable values, names and exit statuses:
 * the contract README.md's "Errors" table states (0 ok; 2 for what the user
 * gave: usage, a file, its format, what presso supports, a config or policy
 * value; 1 for what went wrong while running: memory, the system, the rest). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "base/status.h"

Test(status, values_names_and_exit_codes)
{
	static const struct {
		enum presso_status s;
		int value;
		const char *name;
		int exit_code;
	} table[] = {
		{PRESSO_OK, 0, "ok", 0},
		{PRESSO_E_USAGE, 1, "usage", 2},
		{PRESSO_E_IO, 2, "io", 2},
		{PRESSO_E_FORMAT, 3, "format", 2},
		{PRESSO_E_UNSUPPORTED, 4, "unsupported", 2},
		{PRESSO_E_CONFIG, 5, "config", 2},
		{PRESSO_E_NOMEM, 6, "out of memory", 1},
		{PRESSO_E_RUNTIME, 7, "runtime", 1},
		{PRESSO_E_SYSTEM, 8, "system", 1},
	};
	cr_assert_eq(sizeof table / sizeof table[0], PRESSO_STATUS_COUNT,
		     "a new status needs its row here and in README.md's Errors table");
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		cr_assert_eq((int)table[i].s, table[i].value, "%s", table[i].name);
		cr_assert_str_eq(status_str(table[i].s), table[i].name);
		cr_assert_eq(status_exit_code(table[i].s), table[i].exit_code, "%s", table[i].name);
	}
	cr_assert_str_eq(status_str((enum presso_status)99), "unknown");
}

Test(status, errno_classes)
{
	cr_assert_eq(status_from_errno(ENOSPC), PRESSO_E_SYSTEM);
	cr_assert_eq(status_from_errno(EDQUOT), PRESSO_E_SYSTEM);
	cr_assert_eq(status_from_errno(EIO), PRESSO_E_SYSTEM);
	cr_assert_eq(status_from_errno(EFBIG), PRESSO_E_SYSTEM);
	cr_assert_eq(status_from_errno(ENOMEM), PRESSO_E_NOMEM);
	cr_assert_eq(status_from_errno(ENOENT), PRESSO_E_IO);
	cr_assert_eq(status_from_errno(EACCES), PRESSO_E_IO);
	cr_assert_eq(status_from_errno(ENOTDIR), PRESSO_E_IO);
}

Test(status, messages_wrap_and_are_bounded)
{
	status_clear();
	cr_assert_str_eq(status_msg(), "");
	cr_assert_eq(status_fail(PRESSO_E_CONFIG, "bits: %d is out of range", 9), PRESSO_E_CONFIG);
	cr_assert_eq(status_wrap(PRESSO_E_CONFIG, "layers.%s", "fc"), PRESSO_E_CONFIG);
	cr_assert_str_eq(status_msg(), "layers.fc: bits: 9 is out of range");
	/* a message longer than the buffer is cut, never overrun */
	static char long_text[20000]; /* over twice the 8 KB buffer */
	memset(long_text, 'x', sizeof long_text - 1);
	long_text[sizeof long_text - 1] = '\0';
	status_fail(PRESSO_E_RUNTIME, "%s", long_text);
	status_wrap(PRESSO_E_RUNTIME, "%s", long_text);
	cr_assert_lt(strlen(status_msg()), sizeof long_text);
}
