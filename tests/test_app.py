import urllib.request


def test_app_serves_the_overview(client, app_url):
    html = urllib.request.urlopen(app_url, timeout=30).read().decode()
    assert "Fine-tuning workbench" in html
    model_md, data_md, sample = client.predict(api_name="/overview")
    assert "SmolLM2-135M-Instruct" in model_md
    assert "dolly" in data_md and "rows" in data_md
