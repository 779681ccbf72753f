"""Flask-AppBuilder strings shown on our screens that FAB's own zh catalog leaves untranslated
(or that FAB prints without a translation call, like the buttons of its confirm dialog, which
templates/appbuilder/general/ now wraps in _()).

Listed here only so that `flask --app run crm i18n extract` keeps them in our catalogs: our
catalog is loaded after FAB's and overrides it. Nothing imports this module.
"""


def N_(message: str) -> str:  # gettext_noop: mark for extraction, translate later
    return message


FAB_STRINGS = [
    # CRUD buttons, list actions and dialogs
    N_("Add"), N_("Edit"), N_("Show"), N_("Delete"),
    N_("Are you sure you want to delete this item?"),
    N_("Database Error"), N_("Not a valid choice"),
    # search filters
    N_("Contains (insensitive)"), N_("Start with"), N_("In"), N_("Not In"),
    # users, roles and groups
    N_("Groups"), N_("List Groups"), N_("Add Group"), N_("Edit Group"), N_("Show Group"),
    N_("Edit User Information"), N_("User information changed"),
    N_("Either select a role or a group"),
    N_("It's not a good policy to remove a user, just make it inactive"),
    N_("The user's password for authentication"),
    N_("The user group on the application, this will associate with a list of roles associated with the group"),
    N_("User(s) exists in the group, cannot delete"),
    N_("User(s) exists in the role, cannot delete"),
    N_("Must have at least two capital letters, one special character, two digits, three lower case letters and a minimal length of 10."),
    N_("Sign In with "),
]
