"""GET /api/users: the segmenter pickers of the UI (leads only)."""
from helpers import make_user


def test_lead_lists_active_users_of_a_role_without_secrets(app, client, database, lead, seg, other_seg):
    make_user(app, "zoe", "segmenter")
    database.users.update_one({"username": "zoe"}, {"$set": {"active": False}})
    database.users.update_one({"username": "sam"}, {"$set": {"display_name": "Sam Rivera"}})

    response = client.get("/api/users?role=segmenter", headers=lead)

    assert response.status_code == 200
    assert response.get_json() == [{"username": "olga", "display_name": "olga"},
                                   {"username": "sam", "display_name": "Sam Rivera"}]
    everyone = client.get("/api/users", headers=lead).get_json()
    assert [u["username"] for u in everyone] == ["lead1", "olga", "sam"]
    assert all(set(u) == {"username", "display_name"} for u in everyone)


def test_unknown_role_is_400(client, lead):
    for bad in ("boss", "$ne", "segmenter "):
        response = client.get("/api/users", query_string={"role": bad}, headers=lead)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_parameter"
