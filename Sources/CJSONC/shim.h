/* json-c for Swift: the public header, plus typed wrappers for what Swift cannot express. */
#ifndef LOCKSMITH_CJSONC_SHIM_H
#define LOCKSMITH_CJSONC_SHIM_H
#include <json-c/json.h>

/* json_object_object_foreach is a macro over private lh_entry fields; this walks the same list
 * through functions, so Swift can iterate an object's members in document order. */
static inline struct lh_entry *cjsonc_object_first(struct json_object *obj) {
    return json_object_get_object(obj) ? json_object_get_object(obj)->head : NULL;
}
static inline struct lh_entry *cjsonc_entry_next(struct lh_entry *e) { return e->next; }
static inline const char *cjsonc_entry_key(struct lh_entry *e) { return (const char *)e->k; }
static inline struct json_object *cjsonc_entry_value(struct lh_entry *e) {
    return (struct json_object *)e->v;
}
#endif
