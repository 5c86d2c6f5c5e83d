/* policy-checks.h — the checks of the policy chain (policy.c's table), one
 * module each (smtpd/policy-*.c). See policy.h for the contract. */
#ifndef WARREN_SMTPD_POLICY_CHECKS_H
#define WARREN_SMTPD_POLICY_CHECKS_H

#include "smtpd/policy.h"

/* policy-access.c: the listener's allow_networks / deny_networks (CONNECT). */
enum policy_action policy_listener_access(struct policy_request *r);

#endif
