/* test_alloc.c -- allocation accounting, failure injection, status names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <mantis.h>
#include "alloc.h"

#include <string.h>

static void
test_accounting_returns_to_baseline(void **state)
{
	(void)state;
	mantis_alloc_stats before, mid, after;
	mantis_alloc_get_stats(&before);
	void *a = mantis_malloc(100);
	void *b = mantis_aligned_alloc(64, 1000);
	void *c = mantis_calloc(10, 10);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(((uintptr_t)b) % 64, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(((unsigned char *)c)[i], 0);
	mantis_alloc_get_stats(&mid);
	assert_int_equal(mid.bytes_in_use - before.bytes_in_use, 1200);
	assert_int_equal(mid.allocations - before.allocations, 3);
	mantis_free(a, 100);
	mantis_free(b, 1000);
	mantis_free(c, 100);
	mantis_free(NULL, 5); /* harmless */
	mantis_alloc_get_stats(&after);
	assert_int_equal(after.bytes_in_use, before.bytes_in_use);
	assert_int_equal(after.allocations, before.allocations);
	mantis_alloc_get_stats(NULL); /* harmless */
}

static void
test_bad_sizes(void **state)
{
	(void)state;
	assert_null(mantis_malloc(0));
	assert_null(mantis_calloc(SIZE_MAX / 2, 4)); /* overflow */
	assert_null(mantis_aligned_alloc(3, 10));    /* not a power of two */
}

static void
test_failure_injection(void **state)
{
	(void)state;
	mantis_alloc_fail_after(2);
	void *a = mantis_malloc(8), *b = mantis_malloc(8), *c = mantis_malloc(8);
	mantis_alloc_fail_after(-1);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	void *d = mantis_malloc(8);
	assert_non_null(d);
	mantis_free(a, 8);
	mantis_free(b, 8);
	mantis_free(d, 8);
}

static void
test_strerror_names_every_status(void **state)
{
	(void)state;
	for (int s = 0; s < MANTIS_STATUS_COUNT_; s++) {
		const char *name = mantis_strerror((mantis_status)s);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown status");
	}
	assert_string_equal(mantis_strerror((mantis_status)-1), "unknown status");
	assert_string_equal(mantis_strerror(MANTIS_STATUS_COUNT_), "unknown status");
	assert_string_equal(mantis_strerror(MANTIS_CORRUPT), "corrupt record");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accounting_returns_to_baseline),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_failure_injection),
		cmocka_unit_test(test_strerror_names_every_status),
	};
	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
