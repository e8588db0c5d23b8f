// SPDX-License-Identifier: GPL-2.0-only
/*
 * The uapi header on its own, as C and as C++: it must compile with nothing
 * else included and keep the layout user space was built against.
 */
#include <linux/winvm.h>

#ifdef __cplusplus
#define ASSERT_LAYOUT(cond) static_assert(cond, #cond)
#define OFFSET(type, field) __builtin_offsetof(type, field)
#else
#define ASSERT_LAYOUT(cond) _Static_assert(cond, #cond)
#define OFFSET(type, field) __builtin_offsetof(type, field)
#endif

ASSERT_LAYOUT(sizeof(struct winvm_info) == 48);
ASSERT_LAYOUT(OFFSET(struct winvm_info, features) == 8);
ASSERT_LAYOUT(OFFSET(struct winvm_info, max_address) == 32);
ASSERT_LAYOUT(OFFSET(struct winvm_info, large_page_size) == 40);

ASSERT_LAYOUT(sizeof(struct winvm_alloc_args) == 40);
ASSERT_LAYOUT(OFFSET(struct winvm_alloc_args, flags) == 16);
ASSERT_LAYOUT(OFFSET(struct winvm_alloc_args, prot) == 20);
ASSERT_LAYOUT(OFFSET(struct winvm_alloc_args, out_addr) == 24);
ASSERT_LAYOUT(OFFSET(struct winvm_alloc_args, out_size) == 32);

ASSERT_LAYOUT(sizeof(struct winvm_free_args) == 40);
ASSERT_LAYOUT(OFFSET(struct winvm_free_args, pad) == 20);
ASSERT_LAYOUT(OFFSET(struct winvm_free_args, out_size) == 32);

ASSERT_LAYOUT(sizeof(struct winvm_query_args) == 56);
ASSERT_LAYOUT(OFFSET(struct winvm_query_args, out_flags) == 12);
ASSERT_LAYOUT(OFFSET(struct winvm_query_args, out_base) == 16);
ASSERT_LAYOUT(OFFSET(struct winvm_query_args, out_region_size) == 32);
ASSERT_LAYOUT(OFFSET(struct winvm_query_args, out_type) == 52);
