// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * winvmctl: load, unload and inspect the winvm module.
 *
 *   winvmctl load [PATH]   insert winvm.ko (default ./winvm.ko) and check
 *                          that /dev/winvm answers with a known API version
 *   winvmctl unload        remove the module
 *   winvmctl status        module state, users, holders and device info
 *
 * Exit status: 0 on success, 1 on failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/winvm.h>

#define MODULE_NAME	"winvm"
#define DEVICE		"/dev/winvm"

static int device_info(struct winvm_info *info)
{
	int fd, ret = 0;

	fd = open(DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, WINVM_IOC_GET_INFO, info))
		ret = -errno;
	close(fd);
	return ret;
}

static void print_info(const struct winvm_info *info)
{
	printf("api version:  %u%s\n", info->api_version,
	       info->api_version == WINVM_API_VERSION ? "" :
	       " (this winvmctl speaks another version)");
	printf("features:     %#llx\n", (unsigned long long)info->features);
	printf("page size:    %u\n", info->page_size);
	printf("granularity:  %#llx\n", (unsigned long long)info->granularity);
	printf("large page:   %#llx\n",
	       (unsigned long long)info->large_page_size);
	printf("address range: %#llx-%#llx\n",
	       (unsigned long long)info->min_address,
	       (unsigned long long)info->max_address);
}

static int cmd_load(struct kmod_ctx *ctx, const char *path)
{
	struct kmod_module *mod;
	struct winvm_info info;
	int ret;

	ret = kmod_module_new_from_path(ctx, path, &mod);
	if (ret) {
		fprintf(stderr, "winvmctl: %s: %s\n", path, strerror(-ret));
		return 1;
	}
	ret = kmod_module_insert_module(mod, 0, NULL);
	kmod_module_unref(mod);
	if (ret && ret != -EEXIST) {
		fprintf(stderr, "winvmctl: cannot load %s: %s\n", path,
			strerror(-ret));
		return 1;
	}

	ret = device_info(&info);
	if (ret) {
		fprintf(stderr, "winvmctl: %s: %s\n", DEVICE, strerror(-ret));
		return 1;
	}
	if (info.api_version != WINVM_API_VERSION) {
		fprintf(stderr, "winvmctl: module API version %u, expected %u\n",
			info.api_version, WINVM_API_VERSION);
		return 1;
	}
	return 0;
}

static int cmd_unload(struct kmod_ctx *ctx)
{
	struct kmod_module *mod;
	int ret;

	ret = kmod_module_new_from_name(ctx, MODULE_NAME, &mod);
	if (ret) {
		fprintf(stderr, "winvmctl: %s\n", strerror(-ret));
		return 1;
	}
	ret = kmod_module_remove_module(mod, 0);
	kmod_module_unref(mod);
	if (ret) {
		fprintf(stderr, "winvmctl: cannot unload %s: %s\n", MODULE_NAME,
			strerror(-ret));
		return 1;
	}
	return 0;
}

static const char *state_name(int state)
{
	switch (state) {
	case KMOD_MODULE_BUILTIN:
		return "builtin";
	case KMOD_MODULE_LIVE:
		return "live";
	case KMOD_MODULE_COMING:
		return "coming";
	case KMOD_MODULE_GOING:
		return "going";
	default:
		return "not loaded";
	}
}

static int cmd_status(struct kmod_ctx *ctx)
{
	struct kmod_list *holders, *item;
	struct kmod_module *mod;
	struct winvm_info info;
	int state, ret;

	ret = kmod_module_new_from_name(ctx, MODULE_NAME, &mod);
	if (ret) {
		fprintf(stderr, "winvmctl: %s\n", strerror(-ret));
		return 1;
	}
	state = kmod_module_get_initstate(mod);
	printf("module:       %s\n", state_name(state));
	if (state < 0) {
		kmod_module_unref(mod);
		return 1;
	}
	printf("users:        %d\n", kmod_module_get_refcnt(mod));
	printf("holders:     ");
	holders = kmod_module_get_holders(mod);
	kmod_list_foreach(item, holders) {
		struct kmod_module *holder = kmod_module_get_module(item);

		printf(" %s", kmod_module_get_name(holder));
		kmod_module_unref(holder);
	}
	printf("%s\n", holders ? "" : " none");
	kmod_module_unref_list(holders);
	kmod_module_unref(mod);

	ret = device_info(&info);
	if (ret) {
		printf("device:       %s: %s\n", DEVICE, strerror(-ret));
		return 1;
	}
	print_info(&info);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: winvmctl load [PATH] | unload | status\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct kmod_ctx *ctx;
	int ret;

	if (argc < 2 || argc > 3)
		return usage();
	if (argc == 3 && strcmp(argv[1], "load"))
		return usage();

	ctx = kmod_new(NULL, NULL);
	if (!ctx) {
		fprintf(stderr, "winvmctl: cannot initialise libkmod\n");
		return 1;
	}

	if (!strcmp(argv[1], "load"))
		ret = cmd_load(ctx, argc == 3 ? argv[2] : "./winvm.ko");
	else if (!strcmp(argv[1], "unload"))
		ret = cmd_unload(ctx);
	else if (!strcmp(argv[1], "status"))
		ret = cmd_status(ctx);
	else
		ret = usage();

	kmod_unref(ctx);
	return ret;
}
