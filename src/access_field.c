/*
 * access_field.c — see access_field.h.
 */
#include "access_field.h"

#include <string.h>

#define ACCESS_FIELD_NAME(id, name) [ACCESS_F_##id] = name,
static const char *const field_names[ACCESS_F_COUNT] = {ACCESS_FIELDS(ACCESS_FIELD_NAME)};
#undef ACCESS_FIELD_NAME

const char *access_field_name(enum access_field f)
{
    return (unsigned)f < ACCESS_F_COUNT ? field_names[f] : "?";
}

int access_field_id(const char *name)
{
    for (int i = 0; i < ACCESS_F_COUNT; i++)
        if (strcmp(field_names[i], name) == 0)
            return i;
    return -1;
}
