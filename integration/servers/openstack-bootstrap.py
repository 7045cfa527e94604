#!/usr/bin/python3
"""openstack-bootstrap.py: projects, users, roles and catalog for the tests.

Run by openstack.sh with Debian's /usr/bin/python3 after `keystone-manage
bootstrap` (admin user and project, identity endpoints). Idempotent: every
object is looked up first and created only when missing; role grants are PUTs.
Parameters come from the environment (BOOT_*) so that no password shows up
in `ps`. Prints the id of the application credential of the ssecfs user.

One process instead of a dozen `openstack` commands: each of those spends
about a second starting the Python client.
"""

import os
import sys

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

E = os.environ
AUTH_URL = E["BOOT_AUTH_URL"]
REGION = E["BOOT_REGION"]
DOMAIN = "default"


def log(msg):
    print("openstack-bootstrap: " + msg, file=sys.stderr, flush=True)


def password_session(user, password, project):
    auth = v3.Password(
        auth_url=AUTH_URL,
        username=user,
        password=password,
        user_domain_id=DOMAIN,
        project_name=project,
        project_domain_id=DOMAIN,
    )
    return ks_session.Session(auth=auth, timeout=60)


def one(items, what):
    items = list(items)
    if len(items) > 1:
        raise SystemExit("more than one %s" % what)
    return items[0] if items else None


def ensure_role(ks, name):
    role = one(ks.roles.list(name=name), "role " + name)
    if role is None:
        log("role " + name)
        role = ks.roles.create(name)
    return role


def ensure_project(ks, name, description):
    project = one(ks.projects.list(name=name, domain=DOMAIN), "project " + name)
    if project is None:
        log("project " + name)
        project = ks.projects.create(name, DOMAIN, description=description)
    return project


def ensure_user(ks, name, password, project):
    user = one(ks.users.list(name=name, domain=DOMAIN), "user " + name)
    if user is None:
        log("user " + name)
        user = ks.users.create(name, domain=DOMAIN, password=password, default_project=project)
    else:
        # Keep the fixed test password even if someone changed it.
        ks.users.update(user, password=password, default_project=project)
    return user


def ensure_service(ks, name, type_, description, url):
    service = one(ks.services.list(type=type_), "service of type " + type_)
    if service is None:
        log("service %s (%s)" % (name, type_))
        service = ks.services.create(name, type=type_, description=description)
    for interface in ("public", "internal", "admin"):
        endpoints = list(ks.endpoints.list(service=service, interface=interface, region=REGION))
        if len(endpoints) == 1 and endpoints[0].url == url:
            continue
        for ep in endpoints:
            ks.endpoints.delete(ep)
        log("endpoint %s %s %s" % (type_, interface, url))
        ks.endpoints.create(service, url, interface=interface, region=REGION)
    return service


def appcred_works(cred_id, secret):
    auth = v3.ApplicationCredential(
        auth_url=AUTH_URL, application_credential_id=cred_id, application_credential_secret=secret
    )
    try:
        ks_session.Session(auth=auth, timeout=60).get_token()
        return True
    except ks_exc.Unauthorized:
        return False


def ensure_appcred(user_sess, user, name, secret):
    """The application credential NAME of USER with the fixed SECRET.

    Keystone stores only a hash of the secret, so an existing credential is
    checked by authenticating with it and replaced when that fails.
    """
    ks = ks_client.Client(session=user_sess, interface="public", region_name=REGION)
    # The manager puts the user into the URL as it is: pass the id.
    user = user.id
    cred = one(ks.application_credentials.list(user=user, name=name), "application credential")
    if cred is not None and appcred_works(cred.id, secret):
        return cred.id
    if cred is not None:
        log("replacing application credential " + name)
        ks.application_credentials.delete(cred.id, user=user)
    log("application credential " + name)
    cred = ks.application_credentials.create(
        name,
        user=user,
        secret=secret,
        description="ssecfs integration tests",
    )
    return cred.id


def main():
    admin = password_session(E["BOOT_ADMIN_USER"], E["BOOT_ADMIN_PASSWORD"], E["BOOT_ADMIN_PROJECT"])
    ks = ks_client.Client(session=admin, interface="public", region_name=REGION)

    # Barbican's legacy policy (enforce_new_defaults = false) wants these.
    roles = {name: ensure_role(ks, name) for name in ("admin", "member", "reader", "creator", "observer")}

    # Barbican's own user validates the tokens that clients send it.
    service_project = ensure_project(ks, "service", "OpenStack services")
    barbican = ensure_user(ks, E["BOOT_BARBICAN_USER"], E["BOOT_BARBICAN_PASSWORD"], service_project)
    ks.roles.grant(roles["admin"], user=barbican, project=service_project)
    ensure_service(ks, "barbican", "key-manager", "Barbican key manager", E["BOOT_BARBICAN_URL"])

    # creator: store and read the project's secrets (legacy policy);
    # member/reader: the same under the new policy defaults.
    users = {}
    for user_name, password, project_name in (
        (E["BOOT_USER"], E["BOOT_USER_PASSWORD"], E["BOOT_PROJECT"]),
        (E["BOOT_OTHER_USER"], E["BOOT_OTHER_PASSWORD"], E["BOOT_OTHER_PROJECT"]),
    ):
        project = ensure_project(ks, project_name, "ssecfs integration tests")
        user = ensure_user(ks, user_name, password, project)
        for role in ("creator", "member", "reader"):
            ks.roles.grant(roles[role], user=user, project=project)
        users[user_name] = user

    user_sess = password_session(E["BOOT_USER"], E["BOOT_USER_PASSWORD"], E["BOOT_PROJECT"])
    cred_id = ensure_appcred(user_sess, users[E["BOOT_USER"]], E["BOOT_APPCRED_NAME"], E["BOOT_APPCRED_SECRET"])
    print(cred_id)


if __name__ == "__main__":
    main()
