/*
 * header_check: compile-only proof that "etcd-api.h" keeps the original
 * etcd-api declarations.  An old program that declares the original
 * prototypes next to the include must build without a warning:
 *
 *     gcc -x c -std=c89 -pedantic -Wall -Wextra -Werror -Iinclude -c c-tests/header_check.c
 *     gcc -x c -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude -c c-tests/header_check.c
 *     g++ -x c++ -std=c++98 -pedantic -Wall -Wextra -Werror -Iinclude -c c-tests/header_check.c
 *     g++ -x c++ -std=c++17 -pedantic -Wall -Wextra -Werror -Iinclude -c c-tests/header_check.c
 *
 * (make check-header runs the four.)  The file itself is C89: no //
 * comments, declarations before statements.
 *
 * In C++ a plain redeclaration with a different parameter type is an
 * overload, not an error, and one without extern "C" inherits the header's
 * linkage; so for C++ the prototypes are declared once more inside
 * extern "C" { }.  That is an error if the header lacks its extern "C"
 * guards (a function redeclared with another language linkage) or declares
 * a different type (two C functions of one name).
 */
#include "etcd-api.h"

/* The original prototypes, exactly as written in SPEC section 1. */
etcd_session etcd_open      (etcd_server *server_list);
etcd_session etcd_open_str  (char *server_names);
void         etcd_close     (etcd_session session);
void         etcd_close_str (etcd_session session);
char *       etcd_get       (etcd_session session, char *key);
etcd_result  etcd_watch     (etcd_session session, char *pfx,
                             char **keyp, char **valuep,
                             int *index_in, int *index_out);
etcd_result  etcd_set       (etcd_session session, char *key, char *value,
                             char *precond, unsigned int ttl);
etcd_result  etcd_delete    (etcd_session session, char *key);
char *       etcd_leader    (etcd_session session);
etcd_result  etcd_lock      (etcd_session session, char *key, unsigned int ttl,
                             char *index_in, char **index_out);
etcd_result  etcd_unlock    (etcd_session session, char *key, char *index);

#ifdef __cplusplus
extern "C" {
etcd_session etcd_open      (etcd_server *server_list);
etcd_session etcd_open_str  (char *server_names);
void         etcd_close     (etcd_session session);
void         etcd_close_str (etcd_session session);
char *       etcd_get       (etcd_session session, char *key);
etcd_result  etcd_watch     (etcd_session session, char *pfx,
                             char **keyp, char **valuep,
                             int *index_in, int *index_out);
etcd_result  etcd_set       (etcd_session session, char *key, char *value,
                             char *precond, unsigned int ttl);
etcd_result  etcd_delete    (etcd_session session, char *key);
char *       etcd_leader    (etcd_session session);
etcd_result  etcd_lock      (etcd_session session, char *key, unsigned int ttl,
                             char *index_in, char **index_out);
etcd_result  etcd_unlock    (etcd_session session, char *key, char *index);
}
#endif

/* The result values keep their numbers (C89 and C99 have no _Static_assert). */
typedef char header_check_timeout_is_3[(ETCD_TIMEOUT == 3) ? 1 : -1];
typedef char header_check_ok_is_0[(ETCD_OK == 0) ? 1 : -1];
typedef char header_check_protocol_error_is_1[(ETCD_PROTOCOL_ERROR == 1) ? 1 : -1];
typedef char header_check_wtf_is_2[(ETCD_WTF == 2) ? 1 : -1];

/* The server entry has the original's members and types. */
typedef char header_check_port_is_ushort[
    (sizeof(((etcd_server *)0)->port) == sizeof(unsigned short)) ? 1 : -1];
typedef char header_check_host_is_pointer[
    (sizeof(((etcd_server *)0)->host) == sizeof(char *)) ? 1 : -1];

int header_check_use_types(etcd_server *list, etcd_session session);

/*
 * Uses every type, and takes every function's address through a pointer of
 * the exact original type: a changed parameter or return type is then an
 * error in C++ and a warning (made an error) in C.
 */
int header_check_use_types(etcd_server *list, etcd_session session)
{
    etcd_session (*open_fn)(etcd_server *) = etcd_open;
    etcd_session (*open_str_fn)(char *) = etcd_open_str;
    void (*close_fn)(etcd_session) = etcd_close;
    void (*close_str_fn)(etcd_session) = etcd_close_str;
    char *(*get_fn)(etcd_session, char *) = etcd_get;
    etcd_result (*watch_fn)(etcd_session, char *, char **, char **, int *, int *) = etcd_watch;
    etcd_result (*set_fn)(etcd_session, char *, char *, char *, unsigned int) = etcd_set;
    etcd_result (*delete_fn)(etcd_session, char *) = etcd_delete;
    char *(*leader_fn)(etcd_session) = etcd_leader;
    etcd_result (*lock_fn)(etcd_session, char *, unsigned int, char *, char **) = etcd_lock;
    etcd_result (*unlock_fn)(etcd_session, char *, char *) = etcd_unlock;
    const char *(*errmsg_fn)(void) = etcd_errmsg;
    etcd_server entry;
    etcd_result r = ETCD_PROTOCOL_ERROR;
    int n = 0;

    entry.host = list ? list[0].host : 0;
    entry.port = list ? list[0].port : 0;
    if (r != ETCD_OK && r != ETCD_WTF)
        n++;
    n += open_fn != 0;
    n += open_str_fn != 0;
    n += close_fn != 0;
    n += close_str_fn != 0;
    n += get_fn != 0;
    n += watch_fn != 0;
    n += set_fn != 0;
    n += delete_fn != 0;
    n += leader_fn != 0;
    n += lock_fn != 0;
    n += unlock_fn != 0;
    n += errmsg_fn != 0;
    n += session != 0;
    n += entry.host != 0;
    n += entry.port;
    return n;
}
