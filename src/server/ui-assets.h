/* The dashboard's files, compiled into aclm by web/embed.py (generated
 * ui-assets.c in the build directory); served by ui.c. */
#ifndef ACLM_UI_ASSETS_H
#define ACLM_UI_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

struct ui_asset {
	const char *path;            /* "/index.html", "/assets/main-HASH.js" */
	const char *content_type;
	const char *etag;            /* quoted, from the SHA-256 of data */
	const char *data;
	size_t len;
	const char *gz;              /* gzip of data, or NULL when it does not pay */
	size_t gz_len;
	bool is_immutable;           /* name carries a content hash: cache for a year */
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_n_assets;
/* false: node/npm were missing at build time; index.html says how to build. */
extern const bool ui_assets_built;

#endif
